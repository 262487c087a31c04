//! One dependency type configured per route by a value (FastAPI's
//! `Depends(Pagination(max=50))`): a generic `#[dependency]` function whose
//! const parameter is the configuration, checked and documented per route.

use ferrapi::prelude::*;
use ferrapi::testing::TestClient;
use serde_json::{Value, json};

#[derive(Clone, Debug)]
struct Pagination<const MAX: u32> {
    offset: u32,
    limit: u32,
}

#[derive(Deserialize, JsonSchema, Validate)]
struct PageQuery<const MAX: u32> {
    #[serde(default)]
    offset: u32,
    /// At most `MAX` items.
    #[serde(default = "ten")]
    #[garde(range(min = 1, max = MAX))]
    limit: u32,
}

fn ten() -> u32 {
    10
}

#[ferrapi::dependency]
async fn pagination<const MAX: u32>(Query(q): Query<PageQuery<MAX>>) -> Pagination<MAX> {
    Pagination {
        offset: q.offset,
        limit: q.limit,
    }
}

#[get("/small")]
async fn small(Depends(page): Depends<Pagination<50>>) -> Json<Value> {
    Json(json!([page.offset, page.limit]))
}

#[get("/large")]
async fn large(Depends(page): Depends<Pagination<500>>) -> Json<Value> {
    Json(json!([page.offset, page.limit]))
}

fn app() -> App {
    App::new().route(small).route(large)
}

#[tokio::test]
async fn one_dependency_configured_differently_per_route() {
    let client = TestClient::new(app());
    let res = client.get("/small?limit=20&offset=3").send().await;
    assert_eq!(res.json::<Value>(), json!([3, 20]));
    assert_eq!(
        client.get("/large?limit=200").send().await.json::<Value>(),
        json!([0, 200])
    );

    let res = client.get("/small?limit=200").send().await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": [{
            "type": "less_than_equal",
            "loc": ["query", "limit"],
            "msg": "Input should be less than or equal to 50",
            "input": "200",
            "ctx": {"le": 50}
        }]})
    );
}

#[test]
fn each_configuration_is_documented_on_its_route() {
    let doc = serde_json::to_value(app().build().unwrap().openapi()).unwrap();
    let limit = |path: &str| {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "limit")
            .unwrap()["schema"]["maximum"]
            .clone()
    };
    assert_eq!(limit("/small"), 50);
    assert_eq!(limit("/large"), 500);
}

#[tokio::test]
async fn each_configuration_is_overridden_on_its_own() {
    let app = app().override_dependency(Pagination::<50> {
        offset: 0,
        limit: 1,
    });
    let client = TestClient::new(app);
    assert_eq!(
        client.get("/small").send().await.json::<Value>(),
        json!([0, 1])
    );
    assert_eq!(
        client.get("/large").send().await.json::<Value>(),
        json!([0, 10])
    );
}
