use ferrapi::prelude::*;
use std::rc::Rc;

#[get("/count")]
async fn count() -> Text {
    let counter = Rc::new(1);
    tokio::task::yield_now().await;
    Text(counter.to_string())
}

fn main() {
    let _ = App::new().route(count);
}
