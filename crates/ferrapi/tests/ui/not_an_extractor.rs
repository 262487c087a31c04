use ferrapi::prelude::*;

struct Config;

#[get("/items/{id}")]
async fn read(Path(id): Path<i64>, config: Config) -> Text {
    let _ = config;
    Text(id.to_string())
}

fn main() {
    let _ = App::new().route(read);
}
