use ferrapi::prelude::*;

#[get("/a", status = 700)]
async fn bad_status() -> &'static str {
    ""
}

#[get("/b", colour = "blue")]
async fn unknown_argument() -> &'static str {
    ""
}

#[get("/c")]
fn not_async() -> &'static str {
    ""
}

fn main() {}
