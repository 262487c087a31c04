//! Hello, World! on ferrapi with default features.

use ferrapi::prelude::*;

#[get("/")]
async fn hello() -> &'static str {
    "Hello, World!"
}

fn main() -> Result<(), ferrapi::ServeError> {
    App::new().route(hello).run()
}
