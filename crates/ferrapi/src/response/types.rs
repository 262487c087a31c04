//! [`Json<T>`](crate::Json) as a response (the other response types are
//! in `ferrapi-core`).

use super::{Responder, Response};
use crate::extract::{Json, RequestContext};
use crate::openapi::{DescribeOutput, OperationBuilder};
use ferrapi_core::response::json_body;
use http::StatusCode;
use schemars::JsonSchema;
use serde::Serialize;

impl<T: Serialize + JsonSchema + Send> Responder for Json<T> {
    fn respond(self, cx: &RequestContext) -> Response {
        json_body(cx.status(), &self.0)
    }
}
impl<T: JsonSchema> DescribeOutput for Json<T> {
    fn describe(op: &mut OperationBuilder<'_>, status: StatusCode) {
        op.json_response::<T>(status);
    }
}
