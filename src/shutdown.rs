//! A shutdown signal shared by the daemon's tasks.

use tokio::sync::watch;

/// Cloneable receiver side: tasks wait on it and stop cleanly.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// The trigger held by whoever decides the daemon stops.
pub struct ShutdownTrigger(watch::Sender<bool>);

/// A connected trigger and signal.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown is triggered (or the trigger is gone).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|v| *v).await;
    }
}
