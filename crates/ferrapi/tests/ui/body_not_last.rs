use ferrapi::prelude::*;

#[derive(Deserialize, JsonSchema, Validate)]
#[garde(allow_unvalidated)]
struct Item {
    name: String,
}

#[post("/items/{id}")]
async fn create(Json(item): Json<Item>, Path(id): Path<i64>) -> Text {
    Text(format!("{id} {}", item.name))
}

fn main() {
    let _ = App::new().route(create);
}
