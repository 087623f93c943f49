//! Failure handling and restarts (OTP-style supervision).
//!
//! These run in detached tasks of their own, never in the task that failed: tearing a service
//! down aborts its tasks, which must not cancel the teardown itself.

use std::sync::Arc;

use super::failure::{Cause, Failure};
use super::node::Node;
use super::{Restart, State, Strategy};

/// How a child ended.
enum Exit {
    /// It called `Context::exit`.
    Normal,
    /// It failed.
    Failed(Failure),
}

/// Fails a running service: tears down its subtree, marks it failed, tells its parent.
pub(crate) async fn fail(node: Arc<Node>, failure: Failure) {
    {
        let _op = node.op.lock().await;
        if node.state() != State::Ready {
            return; // stopped or failed meanwhile: nothing left to supervise
        }
        let report = node.tear_down_failed(failure.clone()).await;
        if !report.is_clean() {
            tracing::warn!(service = %node.path, %report, "tearing down a failed service");
        }
    }
    if let Some(parent) = node.parent() {
        child_exited(parent, node, Exit::Failed(failure)).await;
    }
}

/// Ends a service normally (`Context::exit`) and tells its parent.
pub(crate) async fn exit(node: Arc<Node>) {
    // An exit asked for during the start (by the start hook itself, say) takes effect once the
    // start is over, which holds the op lock throughout: the service did start, and is then
    // done. Stopping at once would cancel the start, and the start would report that.
    drop(node.op.lock().await);
    if !node.state().is_running() {
        return;
    }
    node.clone().stop().await;
    if let Some(parent) = node.parent() {
        child_exited(parent, node, Exit::Normal).await;
    }
}

/// The parent's reaction to a child's exit: restart it (and, by strategy, its siblings) after
/// a backoff, or fail in turn when restarts exceed the intensity.
async fn child_exited(parent: Arc<Node>, child: Arc<Node>, exit: Exit) {
    let restart = child.restart_policy();
    let mut last = match (restart, exit) {
        (Restart::Permanent, Exit::Normal) => None,
        (Restart::Permanent | Restart::Transient, Exit::Failed(failure)) => Some(failure),
        (Restart::Transient, Exit::Normal) | (Restart::Temporary, _) => return,
    };
    loop {
        let delay = {
            let _op = parent.op.lock().await;
            if parent.state() != State::Ready || !is_child(&parent, &child) {
                return;
            }
            match parent.admit_restart() {
                Ok(delay) => delay,
                Err((max_restarts, window)) => {
                    let failure = parent.failure(Cause::RestartIntensity {
                        max_restarts,
                        window,
                        child: child.path.clone(),
                        last: last.map(Box::new),
                    });
                    tracing::error!(%failure, "restart intensity exceeded; escalating");
                    drop(_op);
                    // Boxed: escalation recurses up the tree.
                    Box::pin(fail(parent, failure)).await;
                    return;
                }
            }
        };
        tracing::warn!(service = %child.path, ?delay, "restarting");
        parent.tree.exec.sleep(delay).await;

        let _op = parent.op.lock().await;
        if parent.state() != State::Ready || !is_child(&parent, &child) {
            return;
        }
        match restart_children(&parent, &child).await {
            Ok(()) => return,
            Err(failure) => last = Some(failure), // a failed restart counts as another exit
        }
    }
}

fn is_child(parent: &Node, child: &Arc<Node>) -> bool {
    parent.children().iter().any(|c| Arc::ptr_eq(c, child))
}

/// Stops the children the strategy names (in reverse), rebuilds and starts them (in order).
/// Runs with the parent's op lock held.
async fn restart_children(parent: &Arc<Node>, exited: &Arc<Node>) -> Result<(), Failure> {
    let children = parent.children();
    let Some(index) = children.iter().position(|c| Arc::ptr_eq(c, exited)) else {
        return Ok(());
    };
    let affected: Vec<Arc<Node>> = match parent.options().strategy {
        Strategy::OneForOne => vec![exited.clone()],
        Strategy::OneForAll => children.clone(),
        Strategy::RestForOne => children[index..].to_vec(),
    };
    for node in affected.iter().rev() {
        node.clone().stop().await;
    }
    for node in &affected {
        // Temporary siblings are stopped with the others but never restarted (as in OTP).
        if !Arc::ptr_eq(node, exited) && node.restart_policy() == Restart::Temporary {
            continue;
        }
        node.rebuild();
        node.clone().start().await?;
    }
    Ok(())
}
