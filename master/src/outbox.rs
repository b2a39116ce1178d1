//! A session's queue towards its peer, with the master's policy for a slow peer: the queue is
//! bounded; the actor never waits on it, and a peer that lets it fill (it stopped reading)
//! is cut off with a logged reason. A connection's own replies instead wait for room, so a
//! peer that floods requests without reading the answers is simply not read any further.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures::Stream;
use futures::task::AtomicWaker;
use tokio::sync::{Notify, mpsc};
use tracing::warn;

use crate::core::ConnId;

/// Messages queued towards one peer before it counts as not reading.
pub const SESSION_OUTBOX: usize = 1024;

/// Set once when a peer is cut off; a few dozen bytes per session (10,000 workers hold one
/// each). The receiver is woken through `receiver`, other waiters through `notify`.
#[derive(Default)]
struct Cut {
    done: AtomicBool,
    receiver: AtomicWaker,
    notify: Notify,
}

impl Cut {
    fn set(&self) {
        self.done.store(true, Ordering::Release);
        self.receiver.wake();
        self.notify.notify_waiters();
    }

    fn is_set(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Resolves once the peer is cut off.
    async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }
}

/// The sending side: cheap to clone.
pub struct Outbox<T> {
    tx: mpsc::Sender<T>,
    cut: Arc<Cut>,
    conn: ConnId,
}

impl<T> Clone for Outbox<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            cut: self.cut.clone(),
            conn: self.conn,
        }
    }
}

/// The receiving side, owned by whoever writes to the peer.
pub struct OutboxRx<T> {
    rx: mpsc::Receiver<T>,
    cut: Arc<Cut>,
}

pub fn outbox<T>(conn: ConnId, capacity: usize) -> (Outbox<T>, OutboxRx<T>) {
    let (tx, rx) = mpsc::channel(capacity);
    let cut = Arc::new(Cut::default());
    (
        Outbox {
            tx,
            cut: cut.clone(),
            conn,
        },
        OutboxRx { rx, cut },
    )
}

impl<T> Outbox<T> {
    /// Queues without waiting (the actor's way). A full queue cuts the peer off; returns
    /// false when the item was not queued.
    pub fn offer(&self, item: T) -> bool {
        match self.tx.try_send(item) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                warn!(
                    conn = self.conn,
                    queued = self.tx.max_capacity(),
                    "peer stopped reading: its outbox is full; closing the session"
                );
                self.cut();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues, waiting for room (a connection's replies to its own requests).
    pub async fn send(&self, item: T) -> bool {
        self.tx.send(item).await.is_ok()
    }

    /// Ends the peer's stream now, whatever is still queued.
    pub fn cut(&self) {
        self.cut.set();
    }

    pub fn is_cut(&self) -> bool {
        self.cut.is_set()
    }

    /// A sender that does not keep the queue open.
    pub fn downgrade(&self) -> WeakOutbox<T> {
        WeakOutbox {
            tx: self.tx.downgrade(),
        }
    }
}

/// A sender that does not keep the queue open (a reader reporting an error on a stream the
/// actor may already have ended).
pub struct WeakOutbox<T> {
    tx: mpsc::WeakSender<T>,
}

impl<T> WeakOutbox<T> {
    pub fn try_send(&self, item: T) {
        if let Some(tx) = self.tx.upgrade() {
            let _ = tx.try_send(item);
        }
    }
}

impl<T> OutboxRx<T> {
    /// The next item, or `None` once every sender is gone or the peer was cut off.
    /// The senders merely being gone does not end it early: what they queued is delivered.
    pub async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.cut.receiver.register(cx.waker());
        if self.cut.is_set() {
            return Poll::Ready(None);
        }
        self.rx.poll_recv(cx)
    }

    /// A future that resolves when the peer is cut off (to end its connection).
    pub fn cut_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let cut = self.cut.clone();
        async move { cut.wait().await }
    }

    pub fn into_stream(self) -> OutboxStream<T> {
        OutboxStream(self)
    }
}

/// An outbox as a stream: ends when the senders are gone or the peer is cut off. No
/// allocation of its own (one per session at 10,000 workers).
pub struct OutboxStream<T>(OutboxRx<T>);

impl<T> Stream for OutboxStream<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn a_full_outbox_cuts_the_peer_off_and_ends_its_stream() {
        let (tx, rx) = outbox::<u32>(7, 2);
        assert!(tx.offer(1));
        assert!(tx.offer(2));
        assert!(!tx.is_cut());
        assert!(!tx.offer(3), "the third item does not fit");
        assert!(tx.is_cut());
        // What was queued is dropped with the stream: a peer that stopped reading gets nothing more.
        let items: Vec<u32> = rx.into_stream().collect().await;
        assert!(items.is_empty(), "{items:?}");
    }

    #[tokio::test]
    async fn replies_wait_for_room_and_the_stream_ends_with_its_senders() {
        let (tx, rx) = outbox::<u32>(1, 1);
        assert!(tx.send(1).await);
        let waiting = {
            let tx = tx.clone();
            tokio::spawn(async move { tx.send(2).await })
        };
        let mut stream = rx.into_stream();
        assert_eq!(stream.next().await, Some(1));
        assert!(waiting.await.expect("task"));
        assert_eq!(stream.next().await, Some(2));
        assert!(tx.offer(3));
        drop(tx);
        // What was queued before the senders went is still delivered.
        assert_eq!(stream.next().await, Some(3));
        assert_eq!(stream.next().await, None);
    }

    #[tokio::test]
    async fn the_cut_signal_fires_once_cut() {
        let (tx, rx) = outbox::<u32>(1, 1);
        let signal = rx.cut_signal();
        tx.cut();
        tokio::time::timeout(std::time::Duration::from_secs(5), signal)
            .await
            .expect("signal");
        let weak = tx.downgrade();
        drop(tx);
        weak.try_send(1);
    }
}
