//! `skitai.g` in shared memory: the file the master creates, mapped here.

use std::path::Path;

use napi::bindgen_prelude::Either;
use napi::{Error, Result, Status};
use napi_derive::napi;
use skitai_core::shared_state::{SharedState, StateError, Value};

#[napi]
pub struct SharedMemory {
    state: SharedState,
}

fn failed(e: impl std::fmt::Display) -> Error {
    Error::new(Status::GenericFailure, e.to_string())
}

fn state_error(e: StateError) -> Error {
    let status = match e {
        StateError::TooLarge { .. } | StateError::NoSuchSlot(_) => Status::InvalidArg,
        StateError::NotANumber => Status::NumberExpected,
        StateError::LockTimeout { .. } => Status::GenericFailure,
    };
    Error::new(status, e.to_string())
}

#[napi]
impl SharedMemory {
    /// Make the file at `path` with a slot per name, each taking values up to `capacity` bytes.
    #[napi(factory)]
    pub fn create(path: String, names: Vec<String>, capacity: u32) -> Result<Self> {
        SharedState::create(Path::new(&path), &names, capacity as usize)
            .map(|state| SharedMemory { state })
            .map_err(|e| failed(format!("shared memory {path}: {e}")))
    }

    /// Map a file that `create` made, in another process.
    #[napi(factory)]
    pub fn open(path: String) -> Result<Self> {
        SharedState::open(Path::new(&path))
            .map(|state| SharedMemory { state })
            .map_err(|e| failed(format!("shared memory {path}: {e}")))
    }

    #[napi(getter)]
    pub fn names(&self) -> Vec<String> {
        self.state.names().to_vec()
    }

    #[napi(getter)]
    pub fn capacity(&self) -> u32 {
        u32::try_from(self.state.capacity()).unwrap_or(u32::MAX)
    }

    /// A number, JSON text for any other value, or undefined when unset.
    #[napi]
    pub fn read(&self, slot: u32) -> Result<Option<Either<f64, String>>> {
        Ok(match self.state.read(slot as usize).map_err(state_error)? {
            Value::Unset => None,
            Value::Number(n) => Some(Either::A(n)),
            Value::Json(text) => Some(Either::B(String::from_utf8(text).map_err(failed)?)),
        })
    }

    #[napi]
    pub fn write_number(&self, slot: u32, value: f64) -> Result<()> {
        self.state
            .write(slot as usize, &Value::Number(value))
            .map_err(state_error)
    }

    #[napi]
    pub fn write_json(&self, slot: u32, text: String) -> Result<()> {
        self.state
            .write(slot as usize, &Value::Json(text.into_bytes()))
            .map_err(state_error)
    }

    #[napi]
    pub fn clear(&self, slot: u32) -> Result<()> {
        self.state
            .write(slot as usize, &Value::Unset)
            .map_err(state_error)
    }

    /// Add `by` atomically; the new value.
    #[napi]
    pub fn incr(&self, slot: u32, by: f64) -> Result<f64> {
        self.state.incr(slot as usize, by).map_err(state_error)
    }
}
