//! A route reading state no `App::state` registered fails `App::build`,
//! naming the route and the type, instead of answering 500 at request time.

use ferrapi::extract::{AppState, Dependency, Depends, Rejection, RequestContext};
use ferrapi::http::request::Parts;
use ferrapi::prelude::*;
use ferrapi::{RouteErrorKind, ServeError};

#[derive(Clone)]
struct Pool;

#[derive(Clone)]
struct Settings;

#[get("/users")]
async fn users(State(_pool): State<Pool>) -> &'static str {
    "[]"
}

#[get("/settings")]
async fn settings(Depends(AppState(_s)): Depends<AppState<Settings>>) -> &'static str {
    "{}"
}

/// Reads the pool through a dependency.
#[derive(Clone)]
struct CurrentUser;

impl Dependency for CurrentUser {
    fn describe(op: &mut ferrapi::openapi::OperationBuilder<'_>) {
        <State<Pool> as ferrapi::openapi::DescribeInput>::describe(op);
    }
    async fn resolve(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        let State(_pool) =
            <State<Pool> as ferrapi::FromRequestParts>::from_request_parts(parts, cx).await?;
        Ok(CurrentUser)
    }
}

#[get("/me")]
async fn me(Depends(_user): Depends<CurrentUser>) -> &'static str {
    "me"
}

#[test]
fn missing_state_fails_the_build_naming_route_and_type() {
    let err = App::new()
        .route(users)
        .route(settings)
        .route(me)
        .build()
        .unwrap_err();
    let kinds: Vec<_> = err.errors.iter().map(|e| e.kind.clone()).collect();
    assert_eq!(
        kinds,
        [
            RouteErrorKind::MissingState {
                type_name: std::any::type_name::<Pool>()
            },
            RouteErrorKind::MissingState {
                type_name: std::any::type_name::<Settings>()
            },
            RouteErrorKind::MissingState {
                type_name: std::any::type_name::<Pool>()
            },
        ]
    );
    assert!(err.errors[0].route.starts_with("GET /users"), "{err}");
    assert!(err.errors[1].route.starts_with("GET /settings"), "{err}");
    assert!(err.errors[2].route.starts_with("GET /me"), "{err}");
    assert!(
        err.errors[2].problem.contains("through dependency"),
        "{}",
        err.errors[2].problem
    );
    let text = err.to_string();
    assert!(text.contains("state_check::Pool"), "{text}");
    assert!(text.contains("add `.state(value)`"), "{text}");
}

#[test]
fn registered_state_builds() {
    App::new()
        .state(Pool)
        .state(Settings)
        .route(users)
        .route(settings)
        .route(me)
        .build()
        .unwrap();
}

#[test]
fn overridden_dependency_needs_no_state() {
    App::new()
        .route(me)
        .override_dependency(CurrentUser)
        .build()
        .unwrap();
}

#[tokio::test]
async fn serve_refuses_to_start_without_the_state() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let res = App::new()
        .route(users)
        .serve_with(listener, ferrapi::ServeConfig::default(), async {})
        .await;
    assert!(matches!(res, Err(ServeError::Build(_))));
}
