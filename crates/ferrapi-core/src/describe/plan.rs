//! What a route needs at run time, recorded during the describe walk.
//!
//! Written by hand, split off the document walker ([`OperationBuilder`])
//! so that the document model (`ferrapi-openapi`) carries no runtime flag:
//! the walk stays one walk (every `DescribeInput::describe` fills both the
//! document and this plan, so a hand-written dependency that forwards
//! `describe` keeps its checks), and the build's plan phase reads
//! [`OperationBuilder::plan`] into the route's
//! [`RoutePlan`](crate::extract::RoutePlan). Nothing here runs per request.
//!
//! [`OperationBuilder`]: super::OperationBuilder
//! [`OperationBuilder::plan`]: super::OperationBuilder::plan

use std::any::TypeId;
use std::fmt;

/// What the handler's path extractor expects of the path template, recorded
/// while describing so that registration can check the template against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathShape {
    /// One scalar value (`Path<i64>`): the template must have exactly one variable.
    Single,
    /// A tuple of `n` values, in template order.
    Tuple(usize),
    /// A struct: the template's variables must be exactly these names.
    Named(Vec<String>),
}

/// A state type an operation reads, and the dependencies it is read within
/// (outermost first): overriding one of those makes the state unneeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredState {
    /// The state's type.
    pub type_id: TypeId,
    /// Its name, for the build error.
    pub type_name: &'static str,
    /// The dependencies it is read within, outermost first, as (type, name).
    pub within: Vec<(TypeId, &'static str)>,
}

/// The runtime facts of one route, gathered while its extractors,
/// dependencies and response type describe themselves: the walker holds it
/// as [`OperationBuilder::plan`](super::OperationBuilder::plan).
///
/// ```
/// use ferrapi::openapi::{OperationBuilder, SchemaRegistry};
///
/// struct Db;
///
/// let mut registry = SchemaRegistry::default();
/// let mut op = OperationBuilder::new(&mut registry, Vec::new());
/// op.dependency::<Db>("Db", |op| op.require_state::<u32>());
/// assert!(op.plan.uses_dependencies);
/// assert_eq!(op.plan.required_state[0].within[0].1, "Db");
/// ```
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PlanBuilder {
    /// True when the handler's body extractor buffers the whole body (JSON,
    /// form, bytes, text): the framework then reads the body before running
    /// the other extractors and dependencies, as FastAPI does, so that no
    /// resource (a pooled connection, a transaction) is held while a slow
    /// client uploads.
    pub buffers_body: bool,
    /// True once a dependency (`Depends<T>`) is used: requests then get a
    /// dependency scope (cache and cleanups).
    pub uses_dependencies: bool,
    /// True when the handler (or one of its dependencies) takes
    /// `BackgroundTasks`: requests then get a task queue, run after the
    /// response body has been sent.
    pub runs_background_tasks: bool,
    /// What the path extractor expects (set by `Path<T>`).
    pub path_shape: Option<PathShape>,
    /// The application state the operation's extractors read (`State<T>`),
    /// checked against the app's state when it is built.
    pub required_state: Vec<RequiredState>,
    /// The dependencies being described, outermost first: the cycle check
    /// and [`RequiredState::within`] read it.
    dependency_stack: Vec<(TypeId, &'static str)>,
}

/// A dependency that (through its own dependencies) depends on itself:
/// reported by the application build with the route named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyCycle {
    /// The dependencies in the cycle, from the first one entered to the one
    /// that closes it (which is the first one again).
    pub chain: Vec<&'static str>,
}

impl fmt::Display for DependencyCycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dependency cycle: {}", self.chain.join(" -> "))
    }
}

impl std::error::Error for DependencyCycle {}

impl PlanBuilder {
    /// An empty plan: nothing buffered, no dependency, no state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the operation reads application state of type `T`,
    /// within the dependencies being described now.
    pub fn require_state<T: 'static>(&mut self) {
        let need = RequiredState {
            type_id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
            within: self.dependency_stack.clone(),
        };
        if !self.required_state.contains(&need) {
            self.required_state.push(need);
        }
    }

    /// The dependencies being described now, outermost first, as
    /// (type, name).
    pub fn within(&self) -> &[(TypeId, &'static str)] {
        &self.dependency_stack
    }

    /// Enters dependency `T` (named `name`): the operation uses
    /// dependencies. A dependency already being described is a cycle: it is
    /// returned, and nothing is entered. Each `Ok` is paired with one
    /// [`leave_dependency`](Self::leave_dependency) (as
    /// [`OperationBuilder::dependency`](super::OperationBuilder::dependency)
    /// does).
    pub(super) fn enter_dependency<T: 'static>(
        &mut self,
        name: &'static str,
    ) -> Result<(), DependencyCycle> {
        self.uses_dependencies = true;
        let id = TypeId::of::<T>();
        if let Some(pos) = self.dependency_stack.iter().position(|(t, _)| *t == id) {
            let mut chain: Vec<&'static str> = self.dependency_stack[pos..]
                .iter()
                .map(|(_, n)| *n)
                .collect();
            chain.push(name);
            return Err(DependencyCycle { chain });
        }
        self.dependency_stack.push((id, name));
        Ok(())
    }

    /// Leaves the dependency entered last.
    pub(super) fn leave_dependency(&mut self) {
        self.dependency_stack.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::super::OperationBuilder;
    use super::*;
    use crate::extract::{AppState, Depends};
    use ferrapi_openapi::SchemaRegistry;

    struct Outer;
    struct Inner;

    #[test]
    fn a_depends_chain_records_state_within_it() {
        let mut registry = SchemaRegistry::default();
        let mut op = OperationBuilder::new(&mut registry, Vec::new());
        assert!(!op.plan.uses_dependencies);
        op.dependency::<Outer>("Outer", |op| {
            op.dependency::<Inner>("Inner", |op| {
                <Depends<AppState<u32>> as crate::describe::DescribeInput>::describe(op);
            });
        });
        assert!(op.plan.uses_dependencies);
        assert!(op.plan.within().is_empty(), "the stack unwinds");
        let names: Vec<&str> = op.plan.required_state[0]
            .within
            .iter()
            .map(|(_, n)| *n)
            .collect();
        // `Depends<AppState<u32>>` is itself a dependency, innermost.
        assert_eq!(names.len(), 3);
        assert_eq!(names[..2], ["Outer", "Inner"]);
        assert!(names[2].contains("AppState<u32>"), "{names:?}");
        assert_eq!(op.plan.required_state.len(), 1);
        assert_eq!(op.plan.required_state[0].type_id, TypeId::of::<u32>());
        assert!(op.problems.is_empty());
    }

    #[test]
    fn a_cycle_is_a_problem_and_is_not_entered() {
        let mut registry = SchemaRegistry::default();
        let mut op = OperationBuilder::new(&mut registry, Vec::new());
        let mut inner_calls = 0;
        op.dependency::<Outer>("Outer", |op| {
            op.dependency::<Inner>("Inner", |op| {
                op.dependency::<Outer>("Outer", |_| inner_calls += 1);
            });
        });
        assert_eq!(inner_calls, 0);
        assert_eq!(op.problems, ["dependency cycle: Outer -> Inner -> Outer"]);
        assert!(op.plan.within().is_empty());
    }

    #[test]
    fn the_plan_alone() {
        let mut plan = PlanBuilder::new();
        assert_eq!(plan.enter_dependency::<Outer>("Outer"), Ok(()));
        plan.require_state::<u8>();
        plan.require_state::<u8>();
        assert_eq!(
            plan.enter_dependency::<Outer>("Outer")
                .map_err(|c| c.to_string()),
            Err("dependency cycle: Outer -> Outer".to_owned())
        );
        plan.leave_dependency();
        assert!(plan.within().is_empty());
        assert_eq!(plan.required_state.len(), 1, "recorded once");
        assert!(plan.uses_dependencies);
    }
}
