//! Helpers shared by the behaviour tests.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

/// A log that steps append to, passed through a workflow as (part of) its
/// input, so that each test sees only its own events.
#[derive(Clone, Default, Debug)]
pub struct Trace(Arc<Mutex<Vec<String>>>);

impl Trace {
    pub fn push(&self, event: impl Into<String>) {
        self.0.lock().unwrap().push(event.into());
    }

    pub fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    pub fn count(&self, event: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| *e == event)
            .count()
    }
}

pub fn ndf() -> ndf::Ndf {
    ndf::Ndf::builder()
        .build()
        .expect("default config is valid")
}
