//! `cargo run -p ferrapi-examples --bin first_steps`, then open
//! <http://127.0.0.1:8000/openapi.json>.

fn main() -> Result<(), ferrapi::ServeError> {
    ferrapi_examples::first_steps::app().run()
}
