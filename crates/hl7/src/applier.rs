//! The listener's writers: every message from every connection goes to a writer, which takes
//! all that are waiting, applies them one after another in one database transaction (a batch)
//! and commits once, then answers each. One flush serves many messages, so a busy interface is
//! not held to one commit per message (decision 0006); an answer still goes out only after the
//! commit that keeps the message and its change. Messages about one patient always go to the
//! same writer, which applies them in the order they arrived.

use crate::inbound::{Answer, Interface, Peer};
use seldinger_store::{Engine, StoreError};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// At most this many messages per commit: a batch holds the database's write lock (SQLite) or
/// its rows' locks (PostgreSQL) until it commits, so other writers wait no longer than that.
const MOST_PER_BATCH: usize = 128;

/// What a connection hands to a writer.
enum Work {
    Message(Vec<u8>),
    TooLarge {
        head: Vec<u8>,
        length: usize,
        max: usize,
    },
}

struct Job {
    work: Work,
    peer: Peer,
    answer: oneshot::Sender<Answer>,
}

/// The writers of one listener. Cloned into every connection.
#[derive(Clone)]
pub struct Appliers {
    interface: Arc<Interface>,
    queues: Arc<Vec<mpsc::Sender<Job>>>,
}

impl Appliers {
    /// Starts the writers: one on SQLite (it has one writer at a time anyway), a few on
    /// PostgreSQL (rows of different patients are written side by side).
    pub fn start(interface: Arc<Interface>) -> Appliers {
        let writers = match interface.engine() {
            Engine::Sqlite => 1,
            Engine::Postgres => 4,
        };
        let queues = (0..writers)
            .map(|_| {
                let (sender, receiver) = mpsc::channel(1024);
                tokio::spawn(run(interface.clone(), receiver));
                sender
            })
            .collect();
        Appliers {
            interface,
            queues: Arc::new(queues),
        }
    }

    /// Applies a message (its bytes between the frame marks) and answers it once committed.
    pub async fn receive(&self, raw: Vec<u8>, peer: &Peer) -> Answer {
        let writer = self.writer_for(&raw);
        self.hand_over(writer, Work::Message(raw), peer).await
    }

    /// Keeps the head of a message over the size limit, refused.
    pub async fn too_large(&self, head: Vec<u8>, length: usize, max: usize, peer: &Peer) -> Answer {
        let writer = self.writer_for(&head);
        self.hand_over(writer, Work::TooLarge { head, length, max }, peer)
            .await
    }

    /// The writer for a message: by its patient, so one patient's messages keep their order;
    /// by its content when it names none (the same message sent again meets its first copy).
    fn writer_for(&self, raw: &[u8]) -> usize {
        if self.queues.len() == 1 {
            return 0;
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        match self.interface.patient_key_of(raw) {
            Some(key) => key.hash(&mut hasher),
            None => raw.hash(&mut hasher),
        }
        (hasher.finish() % self.queues.len() as u64) as usize
    }

    async fn hand_over(&self, writer: usize, work: Work, peer: &Peer) -> Answer {
        // The header alone, to answer with should the writer be gone.
        let header: Vec<u8> = work
            .raw()
            .split(|b| *b == b'\r')
            .next()
            .unwrap_or_default()
            .to_vec();
        let (answer, answered) = oneshot::channel();
        let job = Job {
            work,
            peer: peer.clone(),
            answer,
        };
        let gone = "the HL7 writer has stopped";
        if self.queues[writer].send(job).await.is_err() {
            return self.interface.not_stored(&header, gone);
        }
        match answered.await {
            Ok(answer) => answer,
            Err(_) => self.interface.not_stored(&header, gone),
        }
    }
}

/// One writer: takes the first waiting message and every other one waiting behind it, applies
/// them in one batch, commits, answers.
async fn run(interface: Arc<Interface>, mut receiver: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MOST_PER_BATCH);
    while receiver.recv_many(&mut jobs, MOST_PER_BATCH).await > 0 {
        let batch = std::mem::take(&mut jobs);
        // Its own task: should applying panic, its batch is rolled back and its senders told to
        // send again, and this writer goes on with the next.
        if let Err(error) = tokio::spawn(apply(interface.clone(), batch)).await {
            tracing::error!(%error, "HL7 batch abandoned: its messages are to be sent again");
        }
    }
}

async fn apply(interface: Arc<Interface>, jobs: Vec<Job>) {
    let batch = match interface.begin_batch().await {
        Ok(batch) => batch,
        Err(error) => {
            return send_again(
                &interface,
                jobs,
                &format!("the database did not answer: {error}"),
            )
        }
    };
    let mut answers = Vec::with_capacity(jobs.len());
    {
        let inside = interface.in_batch(&batch);
        for job in &jobs {
            answers.push(job.apply(&inside).await);
        }
    }
    match batch.commit().await {
        Ok(()) => {
            interface.committed();
            for (job, answer) in jobs.into_iter().zip(answers) {
                let _ = job.answer.send(answer);
            }
        }
        Err(StoreError::Spoiled) => {
            // A change did not go through (a stale write, a duplicate): nothing of the batch
            // was kept, and each message is applied again on its own, as if it came alone.
            tracing::info!(
                messages = jobs.len(),
                "HL7 batch rolled back: applied one at a time"
            );
            for job in jobs {
                let answer = job.apply(&interface).await;
                let _ = job.answer.send(answer);
            }
        }
        Err(error) => {
            tracing::error!(%error, messages = jobs.len(), "HL7 batch not committed");
            send_again(
                &interface,
                jobs,
                &format!("the database did not commit: {error}"),
            );
        }
    }
}

/// Nothing of these messages was kept: every sender is told to send its message again.
fn send_again(interface: &Interface, jobs: Vec<Job>, reason: &str) {
    for job in jobs {
        let answer = interface.not_stored(job.work.raw(), reason);
        let _ = job.answer.send(answer);
    }
}

impl Job {
    /// Applies the message through `interface` (in a batch or alone) and gives its answer.
    async fn apply(&self, interface: &Interface) -> Answer {
        match &self.work {
            Work::Message(raw) => interface.receive(raw, &self.peer).await,
            Work::TooLarge { head, length, max } => {
                interface.too_large(head, *length, *max, &self.peer).await
            }
        }
    }
}

impl Work {
    fn raw(&self) -> &[u8] {
        match self {
            Work::Message(raw) => raw,
            Work::TooLarge { head, .. } => head,
        }
    }
}
