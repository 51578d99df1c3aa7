//! A growable, shared, append-only message log, with no WebAssembly in sight.
//!
//! One producer appends length-prefixed messages to a `SharedMemory`, growing
//! it a page at a time when the next message does not fit, then publishes the
//! new message count with an atomic store and wakes every reader with
//! `notify`. Three consumer threads sleep in `wait32` on the count, read each
//! new message with the copy accessor and check it.
//!
//! Layout: bytes 0..4 hold the message count (u32), messages start at 8, each
//! as a little-endian u32 length followed by that many bytes.
//!
//! Run with `cargo run -p weft-memory --example shared_buffer`.

use std::thread;
use std::time::Duration;

use weft_memory::{MemoryConfig, SharedMemory, WaitOutcome};

const COUNT: u64 = 0;
const FIRST: u64 = 8;
const MESSAGES: u32 = 5_000;

fn message(i: u32) -> String {
    format!("message #{i} says hello from the producer")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One 64 KiB page to start with, room for 64.
    let log = SharedMemory::new(&MemoryConfig::new(1).with_maximum(Some(64)))?;

    let consumers: Vec<_> = (0..3)
        .map(|id| {
            let log = log.clone();
            thread::spawn(move || -> Result<(u32, u32), weft_memory::AccessError> {
                let (mut seen, mut cursor, mut sleeps) = (0u32, FIRST, 0u32);
                while seen < MESSAGES {
                    let published = log.atomic_load::<u32>(COUNT)?;
                    while seen < published {
                        let mut len = [0u8; 4];
                        log.read(cursor, &mut len)?;
                        let len = u32::from_le_bytes(len) as usize;
                        let mut text = vec![0u8; len];
                        log.read(cursor + 4, &mut text)?;
                        assert_eq!(text, message(seen).as_bytes(), "consumer {id}");
                        cursor += 4 + len as u64;
                        seen += 1;
                    }
                    if seen < MESSAGES {
                        // Sleep until the count changes. The timeout is only a
                        // safety net; a lost wake-up would show up as slowness.
                        if log.wait32(COUNT, published, Some(Duration::from_secs(5)))?
                            == WaitOutcome::Woken
                        {
                            sleeps += 1;
                        }
                    }
                }
                Ok((seen, sleeps))
            })
        })
        .collect();

    // The producer.
    let mut end = FIRST;
    let mut grows = 0;
    for i in 0..MESSAGES {
        let text = message(i);
        let needed = end + 4 + text.len() as u64;
        while needed > log.byte_len() as u64 {
            log.grow(1)?;
            grows += 1;
        }
        log.write(end, &(text.len() as u32).to_le_bytes())?;
        log.write(end + 4, text.as_bytes())?;
        end = needed;
        // Publish (SeqCst: the message bytes above happen-before any reader
        // that sees the new count), then wake everyone waiting on it.
        log.atomic_store::<u32>(COUNT, i + 1)?;
        log.notify(COUNT, u32::MAX)?;
    }

    for (id, c) in consumers.into_iter().enumerate() {
        let (seen, sleeps) = c.join().expect("consumer panicked")?;
        println!("consumer {id}: read {seen} messages, slept {sleeps} times");
    }
    println!(
        "producer: wrote {MESSAGES} messages ({end} bytes), grew the log {grows} times to {} pages",
        log.size_pages()
    );
    Ok(())
}
