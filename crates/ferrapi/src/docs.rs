//! The documentation pages, served by the process itself: no CDN, no
//! internet access needed (feature `docs-ui`, on by default).
//!
//! | page | what | assets |
//! |---|---|---|
//! | `docs_url` (`/docs`) | [Swagger UI] 5: browse the operations, "Try it out" against the running server, "Authorize" (OAuth2 password flow, bearer, API keys) | `swagger-ui.css`, `swagger-ui-bundle.js` under `docs_url`, from the [`swagger-ui-dist`] crate |
//! | `docs_url` + `/oauth2-redirect` | Swagger UI's OAuth2 redirect page (FastAPI's `swagger_ui_oauth2_redirect_url`) | `oauth2-redirect.js` |
//! | `redoc_url` (`/redoc`) | a reading-oriented reference: **[Scalar]**, not ReDoc | `scalar.js` under `redoc_url`, from the [`scalar_api_reference`] crate |
//!
//! **Why Scalar at `/redoc`.** FastAPI serves ReDoc there, loaded from a CDN.
//! No crate on crates.io embeds ReDoc's bundle (the utoipa ReDoc and RapiDoc
//! crates load from CDNs), and vendoring the npm bundle (about 1 MB of
//! minified JavaScript) into this repository is not worth its upkeep. Scalar
//! is the same kind of page (three panes, models, code samples) and its own
//! crate embeds its script. It is configured to fetch nothing from the
//! internet: no web fonts, no telemetry, no AI agent, no request proxy.
//!
//! The pages are small HTML documents written here, not the crates' own index
//! pages: asset URLs are absolute (so `/docs`, `/docs/` and `/docs?x=1` all
//! work), Swagger's online validator badge is off (`validatorUrl: null`), and
//! several documents (say the whole API and one per version) are selectable
//! from a bar at the top of Swagger UI, honouring `?urls.primaryName=NAME`
//! as Swagger UI's own top bar does. (The bundle the crate ships lacks Swagger
//! UI's standalone preset, which holds that bar; ours is a `<select>` and a
//! dozen lines of script.) Scalar lists the documents in its own selector.
//!
//! The assets are embedded at compile time and the pages written once, when
//! the routes are made: a request costs a clone of a reference-counted buffer.
//!
//! Without the `docs-ui` feature this module still compiles and `routes`
//! serves, at each page's URL, a 404 page saying that the docs UI was not
//! built in.
//!
//! [Swagger UI]: https://github.com/swagger-api/swagger-ui
//! [Scalar]: https://github.com/scalar/scalar
//! [`swagger-ui-dist`]: https://crates.io/crates/swagger-ui-dist
//! [`scalar_api_reference`]: https://crates.io/crates/scalar_api_reference

use axum::response::{Html, IntoResponse};
use axum::routing::get;
use http::StatusCode;

/// What the docs pages show and where they are served.
///
/// ```
/// use ferrapi::docs::DocsConfig;
///
/// let docs = DocsConfig {
///     title: "Users".into(),
///     documents: vec![
///         ("all".into(), "/openapi.json".into()),
///         ("v1".into(), "/openapi/v1.json".into()),
///     ],
///     ..DocsConfig::default()
/// };
/// assert_eq!(docs.docs_url.as_deref(), Some("/docs"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocsConfig {
    /// The API title, shown in the pages' `<title>`.
    pub title: String,
    /// Where Swagger UI is served (default `/docs`; `None`: not served).
    /// The page answers at this URL with and without a trailing slash.
    pub docs_url: Option<String>,
    /// Where the reference page (Scalar) is served (default `/redoc`;
    /// `None`: not served).
    pub redoc_url: Option<String>,
    /// The OpenAPI documents the pages show, as `(name, url)` pairs; the
    /// first is shown first. With more than one, a selector lists them by
    /// name. Empty: no page is served (FastAPI serves no docs when
    /// `openapi_url` is `None`).
    pub documents: Vec<(String, String)>,
    /// Serve Swagger UI's OAuth2 redirect page at `docs_url` +
    /// `/oauth2-redirect` and point Swagger UI at it (default `true`).
    pub oauth2_redirect: bool,
    /// The prefix the app is mounted under (`/v2` for
    /// `App::mount("/v2", …)`; empty by default): the pages are routed at
    /// `docs_url` inside the app, but link their assets at this prefix +
    /// `docs_url`, as the browser sees them (FastAPI's `root_path`).
    pub root_path: String,
}

impl Default for DocsConfig {
    /// Title `ferrapi`, `/docs`, `/redoc`, one document `/openapi.json`,
    /// the OAuth2 redirect page on.
    fn default() -> Self {
        Self {
            title: "ferrapi".into(),
            docs_url: Some("/docs".into()),
            redoc_url: Some("/redoc".into()),
            documents: vec![("openapi".into(), "/openapi.json".into())],
            oauth2_redirect: true,
            root_path: String::new(),
        }
    }
}

impl DocsConfig {
    /// Every path the pages and their assets are served at, for checking
    /// them against the application's own routes.
    ///
    /// ```
    /// let paths = ferrapi::docs::DocsConfig::default().paths();
    /// assert!(paths.iter().any(|p| p == "/docs/"));
    /// assert!(paths.iter().any(|p| p == "/redoc"));
    /// ```
    pub fn paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.documents.is_empty() {
            return out;
        }
        if let Some(url) = &self.docs_url {
            let base = base(url);
            out.extend(page_paths(&base));
            out.extend(imp::swagger_files(self.oauth2_redirect).map(|f| format!("{base}/{f}")));
        }
        if let Some(url) = &self.redoc_url {
            let base = base(url);
            out.extend(page_paths(&base));
            out.extend(imp::REFERENCE_FILES.iter().map(|f| format!("{base}/{f}")));
        }
        out
    }
}

/// `/docs/` → `/docs`, `docs` → `/docs`, `/` → `` (the root).
fn base(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    if trimmed.is_empty() || trimmed.starts_with('/') {
        trimmed.to_owned()
    } else {
        format!("/{trimmed}")
    }
}

/// The page's own URL and, unless it is the root, the same with a slash.
fn page_paths(base: &str) -> Vec<String> {
    if base.is_empty() {
        vec!["/".to_owned()]
    } else {
        vec![base.to_owned(), format!("{base}/")]
    }
}

/// Adds the docs pages and their assets to `router`.
///
/// Panics as axum does when one of the paths is already routed: check
/// [`DocsConfig::paths`] against the app's routes first.
pub(crate) fn routes(router: axum::Router, docs: &DocsConfig) -> axum::Router {
    if docs.documents.is_empty() {
        return router;
    }
    let mut router = router;
    if let Some(url) = &docs.docs_url {
        router = imp::swagger(router, &base(url), docs);
    }
    if let Some(url) = &docs.redoc_url {
        router = imp::reference(router, &base(url), docs);
    }
    router
}

/// Routes `base` and `base/` to a fixed HTML page.
fn html_page(router: axum::Router, base: &str, status: StatusCode, page: String) -> axum::Router {
    let page = bytes::Bytes::from(page);
    let mut router = router;
    for path in page_paths(base) {
        let page = page.clone();
        router = router.route(
            &path,
            get(move || async move { (status, Html(page)).into_response() }),
        );
    }
    router
}

/// Serves the docs pages in front of an [`App`](crate::App)'s own routes:
/// `App::new().layer(ferrapi::docs::layer(config))`. For tests, and for
/// serving the pages before the app serves them itself.
#[doc(hidden)]
pub fn layer(docs: DocsConfig) -> DocsLayer {
    DocsLayer {
        pages: routes(axum::Router::new(), &docs),
    }
}

/// The tower layer made by [`layer`]: requests for a docs page or asset are
/// answered by the pages' router, every other request goes on unchanged.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct DocsLayer {
    pages: axum::Router,
}

impl<S> tower::Layer<S> for DocsLayer
where
    S: tower::Service<axum::extract::Request, Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Response: IntoResponse + 'static,
    S::Future: Send + 'static,
{
    type Service = axum::Router;

    fn layer(&self, inner: S) -> axum::Router {
        self.pages.clone().fallback_service(inner)
    }
}

/// The pages' HTML. (Unused without `docs-ui`, but still compiled and
/// tested.)
#[cfg_attr(not(feature = "docs-ui"), allow(dead_code))]
mod pages {
    use super::DocsConfig;

    /// The page's HTML, with `title` escaped for text and attribute positions.
    fn escape_html(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                c => out.push(c),
            }
        }
        out
    }

    /// A JSON value that can sit inside a `<script>` element: `</script>` and
    /// `<!--` cannot occur in it.
    fn script_json(value: &serde_json::Value) -> String {
        value
            .to_string()
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
    }

    pub(super) fn swagger_page(base: &str, docs: &DocsConfig) -> String {
        let urls: Vec<serde_json::Value> = docs
            .documents
            .iter()
            .map(|(name, url)| serde_json::json!({"name": name, "url": url}))
            .collect();
        let mut config = serde_json::json!({
            "dom_id": "#swagger-ui",
            "layout": "BaseLayout",
            "deepLinking": true,
            "showExtensions": true,
            "showCommonExtensions": true,
            "validatorUrl": null,
        });
        if docs.oauth2_redirect {
            config["oauth2RedirectUrl"] = serde_json::json!(format!("{base}/oauth2-redirect"));
        }
        let title = escape_html(&docs.title);
        let urls = script_json(&serde_json::Value::Array(urls));
        let config = script_json(&config);
        format!(
            r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - Swagger UI</title>
<link rel="stylesheet" href="{base}/swagger-ui.css">
<style>
body {{ margin: 0; }}
.ferrapi-topbar {{ background: #1b1b1b; padding: 10px 20px; display: flex; justify-content: flex-end; }}
.ferrapi-topbar[hidden] {{ display: none; }}
.ferrapi-topbar label {{ color: #fff; font: bold 14px sans-serif; display: flex; align-items: center; gap: 10px; }}
.ferrapi-topbar select {{ font: bold 14px sans-serif; padding: 4px 8px; border: 2px solid #62a03f; border-radius: 4px; min-width: 200px; }}
</style>
</head>
<body>
<div class="ferrapi-topbar" id="ferrapi-topbar" hidden>
<label>Select a definition <select id="ferrapi-definition"></select></label>
</div>
<div id="swagger-ui"></div>
<script src="{base}/swagger-ui-bundle.js"></script>
<script>
(function () {{
  var urls = {urls};
  var config = {config};
  var params = new URLSearchParams(window.location.search);
  var wanted = params.get("urls.primaryName");
  var current = urls.find(function (u) {{ return u.name === wanted; }}) || urls[0];
  if (config.oauth2RedirectUrl) {{
    config.oauth2RedirectUrl = window.location.origin + config.oauth2RedirectUrl;
  }}
  config.url = current.url;
  config.presets = [SwaggerUIBundle.presets.apis];
  window.ui = SwaggerUIBundle(config);
  if (urls.length > 1) {{
    var select = document.getElementById("ferrapi-definition");
    urls.forEach(function (u) {{
      var option = document.createElement("option");
      option.value = u.name;
      option.textContent = u.name;
      option.selected = u === current;
      select.appendChild(option);
    }});
    select.addEventListener("change", function () {{
      var chosen = urls.find(function (u) {{ return u.name === select.value; }});
      params.set("urls.primaryName", chosen.name);
      window.history.replaceState(null, "", window.location.pathname + "?" + params.toString());
      window.ui.specActions.updateUrl(chosen.url);
      window.ui.specActions.download(chosen.url);
    }});
    document.getElementById("ferrapi-topbar").hidden = false;
  }}
}})();
</script>
</body>
</html>
"##
        )
    }

    pub(super) fn oauth2_redirect_page(base: &str) -> String {
        format!(
            r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Swagger UI: OAuth2 Redirect</title></head>
<body>
<script src="{base}/oauth2-redirect.js"></script>
</body>
</html>
"#
        )
    }

    pub(super) fn reference_page(base: &str, docs: &DocsConfig) -> String {
        let sources: Vec<serde_json::Value> = docs
            .documents
            .iter()
            .enumerate()
            .map(|(i, (name, url))| {
                serde_json::json!({"title": name, "slug": name, "url": url, "default": i == 0})
            })
            .collect();
        // Everything that would reach the internet is off: web fonts (from
        // Scalar's font host), telemetry, the AI agent, MCP; no `proxyUrl`.
        let config = serde_json::json!({
            "sources": sources,
            "withDefaultFonts": false,
            "telemetry": false,
            "agent": {"disabled": true},
            "showDeveloperTools": "never",
            "hideClientButton": true,
            "mcp": {"disabled": true},
        });
        let title = escape_html(&docs.title);
        let config = script_json(&config);
        format!(
            r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - API reference</title>
</head>
<body>
<div id="app"></div>
<script src="{base}/scalar.js"></script>
<script>
Scalar.createApiReference("#app", {config});
</script>
</body>
</html>
"##
        )
    }
}

#[cfg(feature = "docs-ui")]
mod imp {
    use super::pages::{oauth2_redirect_page, reference_page, swagger_page};
    use super::{DocsConfig, html_page};
    use axum::response::IntoResponse;
    use axum::routing::{get, get_service};
    use http::StatusCode;
    use std::sync::OnceLock;
    use tower::ServiceExt;

    /// Where the `swagger-ui-dist` crate's router answers, inside the
    /// wrapper below; requests for `{base}/{file}` are rewritten to it.
    const CRATE_PREFIX: &str = "/swagger-ui-dist";

    /// Swagger UI's assets: the file under `docs_url`, and the crate's path.
    const SWAGGER_ASSETS: [(&str, &str); 5] = [
        ("swagger-ui.css", "/swagger-ui-dist/swagger-ui.css"),
        ("swagger-ui.css.map", "/swagger-ui-dist/swagger-ui.css.map"),
        (
            "swagger-ui-bundle.js",
            "/swagger-ui-dist/swagger-ui-bundle.js",
        ),
        (
            "swagger-ui-bundle.js.map",
            "/swagger-ui-dist/swagger-ui-bundle.js.map",
        ),
        ("oauth2-redirect.js", "/swagger-ui-dist/oauth2-redirect.js"),
    ];

    /// The files served under `docs_url`.
    pub(super) fn swagger_files(oauth2_redirect: bool) -> impl Iterator<Item = &'static str> {
        let redirect = ["oauth2-redirect", "oauth2-redirect.js"];
        SWAGGER_ASSETS
            .iter()
            .map(|(file, _)| *file)
            .filter(|f| *f != "oauth2-redirect.js")
            .chain(redirect.into_iter().filter(move |_| oauth2_redirect))
    }

    /// The files served under `redoc_url`.
    pub(super) const REFERENCE_FILES: &[&str] = &["scalar.js"];

    /// Swagger UI's page, its assets (answered by the `swagger-ui-dist`
    /// crate's own handlers; its index page is never routed) and the OAuth2
    /// redirect page.
    pub(super) fn swagger(router: axum::Router, base: &str, docs: &DocsConfig) -> axum::Router {
        let assets = swagger_ui_dist::generate_routes(swagger_ui_dist::ApiDefinition {
            uri_prefix: CRATE_PREFIX,
            api_definition: swagger_ui_dist::OpenApiSource::Uri(""),
            title: None,
        });
        // Links as the browser sees them: under the mount prefix, if any.
        let href = format!("{}{base}", docs.root_path);
        let mut router = html_page(router, base, StatusCode::OK, swagger_page(&href, docs));
        if docs.oauth2_redirect {
            let page = bytes::Bytes::from(oauth2_redirect_page(&href));
            router = router.route(
                &format!("{base}/oauth2-redirect"),
                get(move || async move { axum::response::Html(page) }),
            );
        }
        for (file, inner) in SWAGGER_ASSETS {
            if file == "oauth2-redirect.js" && !docs.oauth2_redirect {
                continue;
            }
            debug_assert!(inner.starts_with(CRATE_PREFIX));
            let inner = http::Uri::from_static(inner);
            let service = assets
                .clone()
                .map_request(move |mut req: axum::extract::Request| {
                    *req.uri_mut() = inner.clone();
                    req
                });
            router = router.route(&format!("{base}/{file}"), get_service(service));
        }
        router
    }

    /// Scalar's script, read once from the crate's embedded files (in debug
    /// builds rust-embed reads it from the crate's source folder instead).
    fn scalar_js() -> bytes::Bytes {
        static JS: OnceLock<bytes::Bytes> = OnceLock::new();
        JS.get_or_init(|| {
            bytes::Bytes::from(scalar_api_reference::get_asset("scalar.js").unwrap_or_default())
        })
        .clone()
    }

    /// The reference page and Scalar's script.
    pub(super) fn reference(router: axum::Router, base: &str, docs: &DocsConfig) -> axum::Router {
        let href = format!("{}{base}", docs.root_path);
        html_page(router, base, StatusCode::OK, reference_page(&href, docs)).route(
            &format!("{base}/scalar.js"),
            get(|| async {
                (
                    [(http::header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    scalar_js(),
                )
                    .into_response()
            }),
        )
    }
}

#[cfg(not(feature = "docs-ui"))]
mod imp {
    //! The `docs-ui` feature is off: each page's URL says so.
    use super::DocsConfig;

    /// No assets without the feature.
    pub(super) fn swagger_files(_oauth2_redirect: bool) -> impl Iterator<Item = &'static str> {
        std::iter::empty()
    }

    /// No assets without the feature.
    pub(super) const REFERENCE_FILES: &[&str] = &[];

    fn not_built_in(router: axum::Router, base: &str, what: &'static str) -> axum::Router {
        super::html_page(
            router,
            base,
            http::StatusCode::NOT_FOUND,
            format!(
                "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{what} not built in</title></head>\
                 <body><p>{what} is not built into this binary: enable ferrapi's <code>docs-ui</code> feature.</p></body></html>\n"
            ),
        )
    }

    pub(super) fn swagger(router: axum::Router, base: &str, _: &DocsConfig) -> axum::Router {
        not_built_in(router, base, "Swagger UI")
    }

    pub(super) fn reference(router: axum::Router, base: &str, _: &DocsConfig) -> axum::Router {
        not_built_in(router, base, "The API reference page")
    }
}

#[cfg(test)]
mod tests {
    use super::pages::{reference_page, swagger_page};
    use super::*;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get_path(router: &axum::Router, path: &str) -> (StatusCode, String) {
        let req = http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap_or_default();
        let res = match router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = res.status();
        let body = res.into_body().collect().await.map(|b| b.to_bytes());
        (
            status,
            String::from_utf8_lossy(&body.unwrap_or_default()).into_owned(),
        )
    }

    #[test]
    fn urls_are_normalized() {
        assert_eq!(base("/docs"), "/docs");
        assert_eq!(base("/docs/"), "/docs");
        assert_eq!(base("docs"), "/docs");
        assert_eq!(base("/"), "");
        assert_eq!(page_paths(""), ["/"]);
        assert_eq!(page_paths("/docs"), ["/docs", "/docs/"]);
    }

    #[test]
    fn titles_and_documents_cannot_break_out_of_the_page() {
        let docs = DocsConfig {
            title: "<script>alert('x')</script>".into(),
            documents: vec![("a</script>".into(), "/x.json".into())],
            ..DocsConfig::default()
        };
        for page in [
            swagger_page("/docs", &docs),
            reference_page("/redoc", &docs),
        ] {
            assert_eq!(page.matches("<script").count(), 2, "{page}");
            assert_eq!(page.matches("</script>").count(), 2, "{page}");
            assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)"), "{page}");
        }
    }

    #[tokio::test]
    async fn no_documents_no_pages() {
        let docs = DocsConfig {
            documents: Vec::new(),
            ..DocsConfig::default()
        };
        let router = routes(axum::Router::new(), &docs);
        assert_eq!(get_path(&router, "/docs").await.0, StatusCode::NOT_FOUND);
        assert_eq!(get_path(&router, "/redoc").await.0, StatusCode::NOT_FOUND);
    }

    #[cfg(feature = "docs-ui")]
    #[tokio::test]
    async fn pages_at_the_root() {
        let docs = DocsConfig {
            docs_url: Some("/".into()),
            redoc_url: None,
            ..DocsConfig::default()
        };
        let router = routes(axum::Router::new(), &docs);
        let (status, html) = get_path(&router, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains(r#"<script src="/swagger-ui-bundle.js">"#),
            "{html}"
        );
        assert_eq!(get_path(&router, "/swagger-ui.css").await.0, StatusCode::OK);
        assert_eq!(
            get_path(&router, "/oauth2-redirect").await.0,
            StatusCode::OK
        );
    }

    #[cfg(feature = "docs-ui")]
    #[tokio::test]
    async fn assets_are_embedded() {
        let router = routes(axum::Router::new(), &DocsConfig::default());
        for path in [
            "/docs/swagger-ui.css",
            "/docs/swagger-ui-bundle.js",
            "/docs/oauth2-redirect.js",
            "/redoc/scalar.js",
        ] {
            let (status, body) = get_path(&router, path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(body.len() > 1000, "{path}: {} bytes", body.len());
        }
    }

    #[cfg(feature = "docs-ui")]
    #[tokio::test]
    async fn every_listed_path_is_served_and_no_other() {
        for docs in [
            DocsConfig::default(),
            DocsConfig {
                oauth2_redirect: false,
                docs_url: Some("/".into()),
                ..DocsConfig::default()
            },
        ] {
            let router = routes(axum::Router::new(), &docs);
            let paths = docs.paths();
            for path in &paths {
                assert_eq!(get_path(&router, path).await.0, StatusCode::OK, "{path}");
            }
            let unlisted = [
                "/docs/oauth2-redirect",
                "/oauth2-redirect",
                "/oauth2-redirect.js",
            ];
            for path in unlisted.iter().filter(|p| !paths.iter().any(|q| q == *p)) {
                assert_eq!(
                    get_path(&router, path).await.0,
                    StatusCode::NOT_FOUND,
                    "{path}"
                );
            }
        }
    }

    #[cfg(not(feature = "docs-ui"))]
    #[tokio::test]
    async fn without_the_feature_the_pages_say_so() {
        let router = routes(axum::Router::new(), &DocsConfig::default());
        let (status, html) = get_path(&router, "/docs").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(html.contains("docs-ui"), "{html}");
    }
}
