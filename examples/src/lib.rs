//! The guide's examples, so the guide never drifts from the code: the first
//! chapter is a runnable program (`cargo run -p ferrapi-examples --bin
//! first_steps`) with its test, and every code block of the other chapters
//! (`docs/guide/*.md`, included below) is compiled and run as a doctest,
//! asserting what its chapter claims with `ferrapi::testing::TestClient` or
//! `TestServer`.
#![deny(missing_docs)]

pub mod first_steps;
pub mod notes;

/// The guide's chapters, whose code blocks run as doctests.
pub mod guide {
    #[doc = include_str!("../../docs/guide/02-parameters.md")]
    pub mod parameters {}
    #[doc = include_str!("../../docs/guide/03-bodies-and-validation.md")]
    pub mod bodies_and_validation {}
    #[doc = include_str!("../../docs/guide/responses.md")]
    pub mod responses {}
    #[doc = include_str!("../../docs/guide/partial-updates.md")]
    pub mod partial_updates {}
    #[doc = include_str!("../../docs/guide/04-errors.md")]
    pub mod errors {}
    #[doc = include_str!("../../docs/guide/05-dependencies.md")]
    pub mod dependencies {}
    #[doc = include_str!("../../docs/guide/06-security.md")]
    pub mod security {}
    #[doc = include_str!("../../docs/guide/07-testing.md")]
    pub mod testing {}
    #[doc = include_str!("../../docs/guide/08-middleware.md")]
    pub mod middleware {}
    #[doc = include_str!("../../docs/guide/09-background-tasks.md")]
    pub mod background_tasks {}
    #[doc = include_str!("../../docs/guide/10-websocket-and-sse.md")]
    pub mod websocket_and_sse {}
    #[doc = include_str!("../../docs/guide/11-uploads-and-files.md")]
    pub mod uploads_and_files {}
    #[doc = include_str!("../../docs/guide/12-storage.md")]
    pub mod storage {}
    #[doc = include_str!("../../docs/guide/13-settings.md")]
    pub mod settings {}
    #[doc = include_str!("../../docs/guide/14-openapi.md")]
    pub mod openapi {}
    #[doc = include_str!("../../docs/guide/15-observability.md")]
    pub mod observability {}
    #[doc = include_str!("../../docs/guide/16-deployment.md")]
    pub mod deployment {}
    #[doc = include_str!("../../docs/guide/17-performance.md")]
    pub mod performance {}
    #[doc = include_str!("../../docs/guide/coming-from-fastapi.md")]
    pub mod coming_from_fastapi {}
    #[doc = include_str!("../../docs/guide/coming-from-axum.md")]
    pub mod coming_from_axum {}
}
