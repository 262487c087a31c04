//! The docs pages (`/docs`: Swagger UI, `/redoc`: Scalar) work offline:
//! every script and stylesheet they load is served by the app itself, and
//! they name no other host.
#![cfg(feature = "docs-ui")]

use ferrapi::docs::DocsConfig;
use ferrapi::prelude::*;
use ferrapi::testing::TestClient;

#[derive(Deserialize, Serialize, JsonSchema, Validate)]
struct UserCreate {
    #[garde(length(chars, min = 2, max = 50))]
    name: String,
}

/// Create a user.
#[post("/api/v1/users", status = 201, tags = ["users"])]
async fn create_user(Json(user): Json<UserCreate>) -> Json<UserCreate> {
    Json(user)
}

fn docs_config() -> DocsConfig {
    DocsConfig {
        title: "Users <API>".into(),
        documents: vec![("all".into(), "/openapi.json".into())],
        ..DocsConfig::default()
    }
}

/// The app under test, serving its docs pages.
fn client() -> TestClient {
    TestClient::new(App::new().title("Users <API>").route(create_user))
}

/// The values of `attr` on every `<tag …>` of `html` (a scanner good for
/// the pages under test, not for HTML at large).
fn attribute_values(html: &str, tag: &str, attr: &str) -> Vec<String> {
    let open = format!("<{tag}");
    let needle = format!("{attr}=\"");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let end = after.find('>').unwrap_or(after.len());
        let element = &after[..end];
        if let Some(at) = element.find(&needle) {
            let value = &element[at + needle.len()..];
            out.push(value[..value.find('"').unwrap_or(value.len())].to_owned());
        }
        rest = &after[end..];
    }
    out
}

/// Every `http://` or `https://` URL in `text` that leaves the machine.
fn foreign_urls(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for scheme in ["http://", "https://"] {
        for (at, _) in text.match_indices(scheme) {
            let url: String = text[at..]
                .chars()
                .take_while(|c| !c.is_whitespace() && !"\"'<>)".contains(*c))
                .collect();
            let host = &url[scheme.len()..];
            if !(host.starts_with("127.0.0.1") || host.starts_with("localhost")) {
                out.push(url);
            }
        }
    }
    out
}

async fn page(client: &TestClient, path: &str) -> String {
    let res = client.get(path).send().await;
    assert_eq!(res.status(), 200, "GET {path}: {}", res.text());
    let content_type = res.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/html"),
        "GET {path}: {content_type}"
    );
    res.text()
}

/// Fetches every script and stylesheet of `html`; each must be served by
/// the app with a non-empty body. Returns their URLs.
async fn assets_are_served(client: &TestClient, page_path: &str, html: &str) -> Vec<String> {
    let mut urls = attribute_values(html, "script", "src");
    urls.extend(attribute_values(html, "link", "href"));
    for url in &urls {
        assert!(
            url.starts_with('/'),
            "{page_path} loads {url}: not an absolute path"
        );
        let res = client.get(url).send().await;
        assert_eq!(res.status(), 200, "{page_path} loads {url}");
        assert!(
            !res.bytes().is_empty(),
            "{page_path} loads {url}: empty body"
        );
    }
    urls
}

#[tokio::test]
async fn swagger_ui_is_served_with_its_assets() {
    let client = client();
    for path in ["/docs", "/docs/", "/docs?x=1"] {
        let html = page(&client, path).await;
        assert!(html.contains("SwaggerUIBundle("), "{path}");
        assert!(
            html.contains("<title>Users &lt;API&gt; - Swagger UI</title>"),
            "{path}"
        );
        assert!(html.contains(r#""validatorUrl":null"#), "{path}");
        assert_eq!(foreign_urls(&html), Vec::<String>::new(), "{path}");
        let assets = assets_are_served(&client, path, &html).await;
        assert_eq!(
            assets,
            ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"]
        );
    }
    let css = client.get("/docs/swagger-ui.css").send().await;
    assert!(
        css.header("content-type")
            .unwrap_or_default()
            .starts_with("text/css")
    );
    let js = client.get("/docs/swagger-ui-bundle.js").send().await;
    assert!(
        js.header("content-type")
            .unwrap_or_default()
            .contains("javascript")
    );
}

#[tokio::test]
async fn the_document_the_page_names_is_served() {
    let client = client();
    let html = page(&client, "/docs").await;
    assert!(
        html.contains(r#"{"name":"all","url":"/openapi.json"}"#),
        "{html}"
    );
    let doc: serde_json::Value = client.get("/openapi.json").send().await.json();
    assert!(doc["paths"]["/api/v1/users"]["post"].is_object(), "{doc}");
}

#[tokio::test]
async fn oauth2_redirect_page_is_served() {
    let client = client();
    let html = page(&client, "/docs").await;
    assert!(
        html.contains(r#""oauth2RedirectUrl":"/docs/oauth2-redirect""#),
        "{html}"
    );
    let redirect = page(&client, "/docs/oauth2-redirect").await;
    assert_eq!(foreign_urls(&redirect), Vec::<String>::new());
    let assets = assets_are_served(&client, "/docs/oauth2-redirect", &redirect).await;
    assert_eq!(assets, ["/docs/oauth2-redirect.js"]);
}

#[tokio::test]
async fn reference_page_is_served_with_its_script() {
    let client = client();
    for path in ["/redoc", "/redoc/"] {
        let html = page(&client, path).await;
        assert!(html.contains("Scalar.createApiReference("), "{path}");
        assert!(html.contains(r#""withDefaultFonts":false"#), "{path}");
        assert!(html.contains(r#""url":"/openapi.json""#), "{path}");
        assert_eq!(foreign_urls(&html), Vec::<String>::new(), "{path}");
        let assets = assets_are_served(&client, path, &html).await;
        assert_eq!(assets, ["/redoc/scalar.js"]);
    }
}

#[tokio::test]
async fn the_app_routes_still_answer() {
    let client = client();
    let res = client
        .post("/api/v1/users")
        .json(&serde_json::json!({"name": "Ada"}))
        .send()
        .await;
    assert_eq!(res.status(), 201, "{}", res.text());
    let res = client.get("/nowhere").send().await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.text(), r#"{"detail":"Not Found"}"#);
}

#[tokio::test]
async fn pages_move_and_turn_off() {
    // Through the module's own layer, with every setting of DocsConfig.
    let app = App::new().docs_url(None).redoc_url(None);
    let client = TestClient::new(app.layer(ferrapi::docs::layer(DocsConfig {
        docs_url: Some("/api/docs/".into()),
        redoc_url: None,
        oauth2_redirect: false,
        ..docs_config()
    })));
    let html = page(&client, "/api/docs").await;
    assert!(!html.contains(r#""oauth2RedirectUrl":"#), "{html}");
    assets_are_served(&client, "/api/docs", &html).await;
    for gone in [
        "/docs",
        "/redoc",
        "/redoc/scalar.js",
        "/api/docs/oauth2-redirect",
    ] {
        assert_eq!(client.get(gone).send().await.status(), 404, "{gone}");
    }
}

#[tokio::test]
async fn several_documents_are_selectable() {
    // App::document adds a versioned document: the pages offer both.
    let client = TestClient::new(App::new().document("v1", "/api/v1").route(create_user));
    let html = page(&client, "/docs").await;
    assert!(
        html.contains(
            r#"[{"name":"all","url":"/openapi.json"},{"name":"v1","url":"/openapi/v1.json"}]"#
        ),
        "{html}"
    );
    assert!(html.contains("urls.primaryName"), "{html}");
    let html = page(&client, "/redoc").await;
    assert!(
        html.contains(r#""slug":"v1","url":"/openapi/v1.json""#),
        "{html}"
    );
}
