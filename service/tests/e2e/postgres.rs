//! Shared mode on PostgreSQL: the same contract as on SQLite, and two
//! instances on one database behaving as one service.

use crate::Service;
use serde_json::json;
use sqlx::Connection;

/// A fresh database on the server of `TEST_POSTGRES_URL`; `None` (with a
/// message) when the variable is unset.
async fn fresh_database() -> Option<String> {
    let Ok(url) = std::env::var("TEST_POSTGRES_URL") else {
        eprintln!("skipped: TEST_POSTGRES_URL not set");
        return None;
    };
    let name = format!(
        "ferrapi_e2e_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
    Some(format!("{base}/{name}"))
}

#[tokio::test]
async fn the_contract_holds_on_postgres_and_across_two_instances() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let env = [
        ("DATABASE_URL", db.as_str()),
        ("JWT_SECRET", "shared-secret-for-two-instances"),
    ];
    // Both start and migrate at once.
    let (a, b) = tokio::join!(Service::start(&env), Service::start(&env));
    let token = a.login_admin().await;
    *b.token.lock().unwrap() = Some(token);

    let res = a
        .post_json(
            "/api/v1/users",
            &json!({"name": "Ada", "email": "Ada@Example.com", "age": "36", "password": "ada-password"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    let id = res.json()["id"].as_i64().unwrap();
    assert!(res.json()["created_at"].as_str().unwrap().ends_with('Z'));
    // The other instance sees the user, and refuses the same e-mail.
    let res = b.get(&format!("/api/v1/users/{id}")).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["name"], "Ada");
    let res = b
        .post_json(
            "/api/v1/users",
            &json!({"name": "Ada Two", "email": "ada@example.com", "age": 36}),
        )
        .await;
    assert_eq!(res.status, 409, "{}", res.body);
    // Login on one, use on the other.
    let ada = b.login("ada@example.com", "ada-password").await;
    let res = a
        .request(
            "GET",
            "/api/v1/users/me",
            &[("authorization", &format!("Bearer {ada}"))],
            "",
        )
        .await;
    assert_eq!(res.json()["id"], id);
    // Update, page, delete.
    let res = a
        .request(
            "PATCH",
            &format!("/api/v1/users/{id}"),
            &[("content-type", "application/json")],
            &json!({"age": 37, "name": "Ada L."}).to_string(),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let res = b.get("/api/v2/users?limit=1").await;
    assert_eq!(res.status, 200, "{}", res.body);
    let cursor = res.json()["next_cursor"].as_str().unwrap().to_owned();
    let res = b
        .get(&format!("/api/v2/users?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(res.json()["items"][0]["age"], 37);
    let res = a.get("/admin/stats").await;
    assert_eq!(res.json()["users"], 2);
    let res = b
        .request("DELETE", &format!("/api/v1/users/{id}"), &[], "")
        .await;
    assert_eq!(res.status, 204);
    assert_eq!(a.get(&format!("/api/v1/users/{id}")).await.status, 404);
    assert_eq!(
        a.get("/health/ready").await.json()["checks"]["database"],
        "ok"
    );
}
