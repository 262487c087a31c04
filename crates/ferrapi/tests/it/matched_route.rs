//! The matched route the dispatcher publishes: extracted by a handler, seen
//! by a layer through its slot, and nothing published when no one asked.

use ferrapi::axum::body::Body;
use ferrapi::axum::response::Response;
use ferrapi::http::{HeaderValue, Method, Request, request::Parts};
use ferrapi::middleware::{Next, from_fn};
use ferrapi::prelude::*;
use ferrapi::routing::{MatchedRoute, MatchedRouteSlot};
use ferrapi::testing::TestClient;
use ferrapi::{FromRequestParts, Rejection, RequestContext};

#[get("/health")]
async fn health() -> &'static str {
    "ok"
}

#[get("/items/{item_id}")]
async fn item(route: MatchedRoute, Path(_id): Path<i64>) -> Text {
    Text(format!(
        "{} {} {}",
        route.method(),
        route.template(),
        route.id().index()
    ))
}

/// A layer that asks for the route: answers it in `x-route`.
async fn stamp_route(mut req: Request<Body>, next: Next) -> Response {
    let slot = MatchedRouteSlot::default();
    req.extensions_mut().insert(slot.clone());
    let mut res = next.run(req).await;
    let seen = slot.get().map_or_else(
        || "none".to_owned(),
        |r| format!("{} {}", r.method(), r.template()),
    );
    res.headers_mut()
        .insert("x-route", HeaderValue::from_str(&seen).unwrap());
    res
}

#[tokio::test]
async fn a_handler_extracts_its_route_and_a_layer_sees_it() {
    let client = TestClient::new(
        App::new()
            .route(health)
            .route(item)
            .layer(from_fn(stamp_route)),
    );
    let res = client.get("/items/7").send().await;
    assert_eq!(res.status(), 200);
    // Numbered in the order the routes were given.
    assert_eq!(res.text(), "GET /items/{item_id} 1");
    assert_eq!(res.header("x-route"), Some("GET /items/{item_id}"));
    // A HEAD answered by the GET route: the route's method is GET.
    let res = client.request(Method::HEAD, "/items/7").send().await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.header("x-route"), Some("GET /items/{item_id}"));
    assert_eq!(
        client.get("/health").send().await.header("x-route"),
        Some("GET /health")
    );
    // No route: a 404, the document, a 405.
    for (method, path) in [
        (Method::GET, "/nowhere"),
        (Method::GET, "/openapi.json"),
        (Method::DELETE, "/items/7"),
    ] {
        let res = client.request(method.clone(), path).send().await;
        assert_eq!(res.header("x-route"), Some("none"), "{method} {path}");
    }
}

/// What the handler's request carries besides what the layer saw.
struct Published {
    extensions: usize,
    route: bool,
}

impl ferrapi::openapi::DescribeInput for Published {}

impl FromRequestParts for Published {
    async fn from_request_parts(
        parts: &mut Parts,
        _cx: &RequestContext,
    ) -> Result<Self, Rejection> {
        Ok(Published {
            extensions: parts.extensions.len(),
            route: parts.extensions.get::<MatchedRoute>().is_some()
                || parts.extensions.get::<MatchedRouteSlot>().is_some(),
        })
    }
}

#[get("/peek")]
async fn peek(published: Published) -> Text {
    Text(format!("{} {}", published.extensions, published.route))
}

#[tokio::test]
async fn nothing_is_published_when_no_one_asked() {
    // A layer that does not ask: counts the request's extensions on the
    // way in, looks for the route on the response on the way out.
    let client = TestClient::new(App::new().route(peek).layer(from_fn(
        |req: Request<Body>, next: Next| async move {
            let before = req.extensions().len();
            let mut res = next.run(req).await;
            let on_response = res.extensions().get::<MatchedRoute>().is_some();
            res.headers_mut().insert(
                "x-before",
                HeaderValue::from_str(&format!("{before} {on_response}")).unwrap(),
            );
            res
        },
    )));
    let res = client.get("/peek").send().await;
    assert_eq!(res.status(), 200);
    let before = res.header("x-before").unwrap().to_owned();
    let (count, on_response) = before.split_once(' ').unwrap();
    assert_eq!(on_response, "false", "a route on the response");
    // The handler's request has exactly what the layer passed in.
    assert_eq!(res.text(), format!("{count} false"));
}
