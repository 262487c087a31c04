//! The real-time side's documents: the AsyncAPI 3.0 document of WebSocket
//! routes and bus topics, and the OpenAPI document's `x-websockets`, as
//! exact JSON; both served as documents of a live app.

use ferrapi::prelude::*;
use ferrapi::testing::TestClient;
use ferrapi::ws::{WebSocketResponse, WebSocketUpgrade};
use serde_json::{Value, json};

/// A ping from the client.
#[derive(Deserialize, JsonSchema, Validate)]
struct Ping {
    seq: u32,
}

/// The server's answer to a ping.
#[derive(Serialize, JsonSchema)]
struct Pong {
    seq: u32,
    /// The room it was sent in.
    room: String,
}

/// Something that happened in a room.
#[derive(Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RoomEvent {
    /// Someone joined.
    Joined { name: String },
    /// The room was closed.
    Closed,
}

#[derive(Deserialize, JsonSchema, Validate)]
struct Auth {
    /// An access token.
    token: String,
    lang: Option<String>,
}

/// Pings and room events.
///
/// Answers each ping with a pong, and forwards the room's events.
#[get("/ws/rooms/{room}", tags = ["chat"], receives = [Ping], sends = [Pong, RoomEvent])]
async fn room(
    ws: WebSocketUpgrade,
    Path(room): Path<String>,
    Query(auth): Query<Auth>,
) -> WebSocketResponse {
    ws.on_upgrade(move |mut socket| async move {
        let name = auth.lang.map_or(auth.token.clone(), |lang| {
            format!("{} ({lang})", auth.token)
        });
        let _ = socket.send_json(&RoomEvent::Joined { name }).await;
        while let Ok(ping) = socket.recv_json::<Ping>().await {
            let pong = Pong {
                seq: ping.seq,
                room: room.clone(),
            };
            if socket.send_json(&pong).await.is_err() {
                break;
            }
        }
        let _ = socket.send_json(&RoomEvent::Closed).await;
    })
}

/// A route without declared messages.
#[get("/ws/raw")]
async fn raw(ws: WebSocketUpgrade) -> WebSocketResponse {
    ws.on_upgrade(|_socket| async {})
}

#[get("/plain")]
async fn plain() -> &'static str {
    "plain"
}

fn app() -> App {
    App::new()
        .title("Chat")
        .version("2.0.0")
        .description("Rooms.")
        .server("https://chat.example.com/api", Some("Production"))
        .asyncapi_server("bus", "nats.internal:4222", "nats", Some("The message bus"))
        .tag("chat", "Chat rooms.")
        .route(room)
        .route(raw)
        .route(plain)
        .publishes::<RoomEvent>("rooms.events", "Room events, one per change.")
        .subscribes::<RoomEvent>("rooms.events", "ignored: the first description stays")
}

#[test]
fn the_asyncapi_document_is_exact() {
    let built = app().build().unwrap();
    let doc = serde_json::to_value(built.asyncapi()).unwrap();
    assert_eq!(
        doc,
        json!({
          "asyncapi": "3.0.0",
          "info": {
            "title": "Chat",
            "version": "2.0.0",
            "description": "Rooms.",
            "tags": [
              {
                "name": "chat",
                "description": "Chat rooms."
              }
            ]
          },
          "servers": {
            "bus": {
              "host": "nats.internal:4222",
              "protocol": "nats",
              "description": "The message bus"
            },
            "ws": {
              "host": "chat.example.com",
              "protocol": "wss",
              "pathname": "/api",
              "description": "Production"
            }
          },
          "defaultContentType": "application/json",
          "channels": {
            "room": {
              "address": "/ws/rooms/{room}",
              "summary": "Pings and room events.",
              "description": "Answers each ping with a pong, and forwards the room's events.",
              "messages": {
                "Ping": {
                  "$ref": "#/components/messages/Ping"
                },
                "Pong": {
                  "$ref": "#/components/messages/Pong"
                },
                "RoomEvent": {
                  "$ref": "#/components/messages/RoomEvent"
                }
              },
              "parameters": {
                "room": {}
              },
              "servers": [
                {
                  "$ref": "#/servers/ws"
                }
              ],
              "tags": [
                {
                  "name": "chat",
                  "description": "Chat rooms."
                }
              ],
              "bindings": {
                "ws": {
                  "method": "GET",
                  "query": {
                    "type": "object",
                    "properties": {
                      "token": {
                        "type": "string",
                        "description": "An access token."
                      },
                      "lang": {
                        "type": [
                          "string",
                          "null"
                        ]
                      }
                    },
                    "required": [
                      "token"
                    ]
                  },
                  "bindingVersion": "0.1.0"
                }
              }
            },
            "raw": {
              "address": "/ws/raw",
              "summary": "A route without declared messages.",
              "servers": [
                {
                  "$ref": "#/servers/ws"
                }
              ],
              "bindings": {
                "ws": {
                  "method": "GET",
                  "bindingVersion": "0.1.0"
                }
              }
            },
            "rooms.events": {
              "address": "rooms.events",
              "description": "Room events, one per change.",
              "messages": {
                "RoomEvent": {
                  "$ref": "#/components/messages/RoomEvent"
                }
              },
              "servers": [
                {
                  "$ref": "#/servers/bus"
                }
              ]
            }
          },
          "operations": {
            "receive_room": {
              "action": "receive",
              "channel": {
                "$ref": "#/channels/room"
              },
              "summary": "Messages the client sends.",
              "messages": [
                {
                  "$ref": "#/channels/room/messages/Ping"
                }
              ]
            },
            "send_room": {
              "action": "send",
              "channel": {
                "$ref": "#/channels/room"
              },
              "summary": "Messages the server sends to the client.",
              "messages": [
                {
                  "$ref": "#/channels/room/messages/Pong"
                },
                {
                  "$ref": "#/channels/room/messages/RoomEvent"
                }
              ]
            },
            "send_rooms.events": {
              "action": "send",
              "channel": {
                "$ref": "#/channels/rooms.events"
              },
              "summary": "Events the application publishes.",
              "messages": [
                {
                  "$ref": "#/channels/rooms.events/messages/RoomEvent"
                }
              ]
            },
            "receive_rooms.events": {
              "action": "receive",
              "channel": {
                "$ref": "#/channels/rooms.events"
              },
              "summary": "Events the application subscribes to.",
              "messages": [
                {
                  "$ref": "#/channels/rooms.events/messages/RoomEvent"
                }
              ]
            }
          },
          "components": {
            "schemas": {
              "Ping": {
                "type": "object",
                "properties": {
                  "seq": {
                    "type": "integer",
                    "format": "uint32",
                    "minimum": 0
                  }
                },
                "required": [
                  "seq"
                ],
                "description": "A ping from the client."
              },
              "Pong": {
                "type": "object",
                "properties": {
                  "seq": {
                    "type": "integer",
                    "format": "uint32",
                    "minimum": 0
                  },
                  "room": {
                    "type": "string",
                    "description": "The room it was sent in."
                  }
                },
                "required": [
                  "seq",
                  "room"
                ],
                "description": "The server's answer to a ping."
              },
              "RoomEvent": {
                "oneOf": [
                  {
                    "type": "object",
                    "properties": {
                      "type": {
                        "type": "string",
                        "const": "joined"
                      },
                      "name": {
                        "type": "string"
                      }
                    },
                    "required": [
                      "type",
                      "name"
                    ],
                    "description": "Someone joined."
                  },
                  {
                    "type": "object",
                    "properties": {
                      "type": {
                        "type": "string",
                        "const": "closed"
                      }
                    },
                    "required": [
                      "type"
                    ],
                    "description": "The room was closed."
                  }
                ],
                "description": "Something that happened in a room."
              }
            },
            "messages": {
              "Ping": {
                "name": "Ping",
                "description": "A ping from the client.",
                "payload": {
                  "$ref": "#/components/schemas/Ping"
                }
              },
              "Pong": {
                "name": "Pong",
                "description": "The server's answer to a ping.",
                "payload": {
                  "$ref": "#/components/schemas/Pong"
                }
              },
              "RoomEvent": {
                "name": "RoomEvent",
                "description": "Something that happened in a room.",
                "payload": {
                  "$ref": "#/components/schemas/RoomEvent"
                }
              }
            }
          }
        })
    );
}

#[test]
fn websocket_routes_are_listed_under_x_websockets() {
    let built = app().build().unwrap();
    let doc = serde_json::to_value(built.openapi()).unwrap();
    // Not operations: `paths` holds the plain route only.
    assert_eq!(
        doc["paths"].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["/plain"]
    );
    assert_eq!(
        doc["x-websockets"],
        json!({
          "/ws/rooms/{room}": {
            "tags": [
              "chat"
            ],
            "summary": "Pings and room events.",
            "description": "Answers each ping with a pong, and forwards the room's events.",
            "operationId": "room",
            "parameters": [
              {
                "name": "room",
                "in": "path",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              {
                "name": "token",
                "in": "query",
                "required": true,
                "schema": {
                  "type": "string"
                },
                "description": "An access token."
              },
              {
                "name": "lang",
                "in": "query",
                "required": false,
                "schema": {
                  "type": [
                    "string",
                    "null"
                  ]
                }
              }
            ],
            "receives": [
              {
                "$ref": "#/components/schemas/Ping"
              }
            ],
            "sends": [
              {
                "$ref": "#/components/schemas/Pong"
              },
              {
                "$ref": "#/components/schemas/RoomEvent"
              }
            ]
          },
          "/ws/raw": {
            "summary": "A route without declared messages.",
            "operationId": "raw"
          }
        })
    );
    // The message schemas are OpenAPI components (JSON Schema 2020-12).
    for name in ["Ping", "Pong", "RoomEvent"] {
        assert!(doc["components"]["schemas"].get(name).is_some(), "{name}");
    }
}

#[test]
fn a_version_document_keeps_its_websocket_routes_and_their_schemas() {
    let built = app().build().unwrap();
    let rooms = serde_json::to_value(built.openapi().subset("/ws/rooms")).unwrap();
    assert_eq!(
        rooms["x-websockets"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["/ws/rooms/{room}"]
    );
    let mut schemas: Vec<&String> = rooms["components"]["schemas"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    schemas.sort();
    assert_eq!(schemas, ["Ping", "Pong", "RoomEvent"]);
    assert_eq!(
        rooms["tags"],
        json!([{"name": "chat", "description": "Chat rooms."}])
    );
    let plain = serde_json::to_value(built.openapi().subset("/plain")).unwrap();
    assert!(plain.get("x-websockets").is_none(), "{plain}");
}

#[tokio::test]
async fn the_documents_are_served() {
    let built = app().build().unwrap();
    let expected = serde_json::to_value(built.asyncapi()).unwrap();
    let client = TestClient::new(app());
    let res = client.get("/asyncapi.json").send().await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(res.json::<Value>(), expected);
    let openapi: Value = client.get("/openapi.json").send().await.json();
    assert!(
        openapi["x-websockets"].get("/ws/raw").is_some(),
        "{openapi}"
    );

    // Moved, and turned off.
    let client = TestClient::new(app().asyncapi_url(Some("/docs/asyncapi.json")));
    assert_eq!(
        client
            .get("/docs/asyncapi.json")
            .send()
            .await
            .json::<Value>(),
        expected
    );
    assert_eq!(client.get("/asyncapi.json").send().await.status(), 404);
    let client = TestClient::new(app().asyncapi_url(None));
    assert_eq!(client.get("/asyncapi.json").send().await.status(), 404);
}

#[tokio::test]
async fn an_app_without_channels_serves_no_asyncapi_document() {
    let app = App::new().route(plain);
    let built = App::new().route(plain).build().unwrap();
    assert!(built.asyncapi().is_empty());
    assert!(built.openapi().websockets.is_empty());
    let client = TestClient::new(app);
    assert_eq!(client.get("/asyncapi.json").send().await.status(), 404);
    let openapi: Value = client.get("/openapi.json").send().await.json();
    assert!(openapi.get("x-websockets").is_none(), "{openapi}");
}

#[test]
fn declaration_mistakes_are_reported() {
    // Messages on a route that is no WebSocket route.
    let route = Route::get("/plain", || async { "plain" }).websocket_sends::<Pong>();
    let err = App::new().route(route).build().unwrap_err();
    assert!(
        err.errors[0].problem.contains("is no WebSocket route"),
        "{err}"
    );
    // A topic named as a WebSocket route's channel.
    let err = App::new()
        .route(raw)
        .publishes::<RoomEvent>("raw", "clash")
        .build()
        .unwrap_err();
    assert_eq!(err.errors[0].route, "bus topic `raw`");
    assert!(err.errors[0].problem.contains("declared twice"), "{err}");
    // A route at the document's URL, which is fine once the document moves.
    let shadowing = || {
        App::new()
            .route(room)
            .route(Route::get("/asyncapi.json", || async { "mine" }))
    };
    let err = shadowing().build().unwrap_err();
    assert!(err.errors[0].problem.contains("asyncapi_url"), "{err}");
    shadowing()
        .asyncapi_url(Some("/asyncapi-v2.json"))
        .build()
        .unwrap();
}

#[test]
fn schemas_are_draft_07_in_asyncapi_and_2020_12_in_openapi() {
    /// A pair.
    #[derive(Serialize, JsonSchema)]
    struct Pair(i32, i32);
    #[get("/ws/pairs", sends = [Pair])]
    async fn pairs(ws: WebSocketUpgrade) -> WebSocketResponse {
        ws.on_upgrade(|_socket| async {})
    }
    let built = App::new().route(pairs).build().unwrap();
    let asyncapi = &built.asyncapi().components.schemas["Pair"];
    assert_eq!(
        asyncapi["items"],
        json!([{"type": "integer", "format": "int32"}, {"type": "integer", "format": "int32"}])
    );
    let openapi = &built.openapi().components.schemas["Pair"];
    assert!(openapi.get("prefixItems").is_some(), "{openapi}");
}
