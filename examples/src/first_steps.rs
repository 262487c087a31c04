//! First steps: a model, two routes, the app.

use ferrapi::prelude::*;

/// An item as clients send it.
#[derive(Debug, Deserialize, Serialize, JsonSchema, Validate)]
pub struct Item {
    /// 1 to 100 characters.
    #[garde(length(chars, min = 1, max = 100))]
    pub name: String,
    /// Not negative.
    #[garde(range(min = 0.0))]
    pub price: f64,
}

/// Say hello.
#[get("/")]
pub async fn root() -> Json<serde_json::Value> {
    Json(serde_json::json!({"message": "Hello World"}))
}

/// Read an item by id.
#[get("/items/{item_id}")]
pub async fn read_item(Path(item_id): Path<i64>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"item_id": item_id}))
}

/// Create an item.
#[post("/items", status = 201)]
pub async fn create_item(Json(item): Json<Item>) -> Json<Item> {
    Json(item)
}

/// The application.
pub fn app() -> App {
    App::new()
        .title("First steps")
        .route(root)
        .route(read_item)
        .route(create_item)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::app;
    use ferrapi::testing::TestClient;
    use serde_json::{Value, json};

    #[tokio::test]
    async fn the_chapter_holds() {
        let client = TestClient::new(app());
        let res = client.get("/").send().await;
        assert_eq!(res.json::<Value>(), json!({"message": "Hello World"}));
        let res = client.get("/items/5").send().await;
        assert_eq!(res.json::<Value>(), json!({"item_id": 5}));
        let res = client.get("/items/five").send().await;
        assert_eq!(res.status(), 422);
        let res = client
            .post("/items")
            .json(&json!({"name": "Tea", "price": 2.5}))
            .send()
            .await;
        assert_eq!(res.status(), 201);
        let res = client
            .post("/items")
            .json(&json!({"name": "", "price": -1}))
            .send()
            .await;
        let detail: Value = res.json();
        assert_eq!(detail["detail"].as_array().unwrap().len(), 2);
    }
}
