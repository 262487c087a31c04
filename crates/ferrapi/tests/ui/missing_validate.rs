use ferrapi::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Note {
    title: String,
}

#[derive(Deserialize, JsonSchema)]
struct Page {
    limit: u32,
}

#[post("/notes")]
async fn create(Json(note): Json<Note>) -> Text {
    Text(note.title)
}

#[get("/notes")]
async fn list(Query(page): Query<Page>) -> Text {
    Text(page.limit.to_string())
}

fn main() {
    let _ = App::new().route(create).route(list);
}
