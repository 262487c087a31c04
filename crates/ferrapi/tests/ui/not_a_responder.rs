use ferrapi::prelude::*;

struct Secret;

#[get("/secret")]
async fn secret() -> Secret {
    Secret
}

fn main() {
    let _ = App::new().route(secret);
}
