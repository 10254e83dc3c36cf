//! A Buffer a batch's binary records reach JS in (its access records, its
//! WebSocket messages' entries): one kept from batch to batch, grown when a
//! batch outgrows it. A new Buffer per batch costs an
//! allocation, and with one per batch V8's young-generation collections took
//! about three times as long (0.6 ms against 0.25 on the hello bench).

use std::ptr;

use napi::bindgen_prelude::*;

pub struct RecordBuffer {
    env: sys::napi_env,
    /// Keeps the Buffer alive while its memory is written; null until the first records.
    reference: sys::napi_ref,
    data: *mut u8,
    capacity: usize,
}

/// What a batch's records are first given: a busy server's batches fit.
const FIRST_CAPACITY: usize = 64 * 1024;

impl RecordBuffer {
    /// `env`: the JS thread's, the only thread that uses this.
    pub fn new(env: sys::napi_env) -> RecordBuffer {
        RecordBuffer {
            env,
            reference: ptr::null_mut(),
            data: ptr::null_mut(),
            capacity: 0,
        }
    }

    /// The kept Buffer with `records` copied to its start; undefined when there are none.
    pub fn fill(&mut self, records: &[u8]) -> Result<JsRaw> {
        let env = self.env;
        if records.is_empty() {
            let mut undefined = ptr::null_mut();
            check_status!(unsafe { sys::napi_get_undefined(env, &mut undefined) })?;
            return Ok(JsRaw(undefined));
        }
        if records.len() > self.capacity {
            self.grow(records.len().next_power_of_two().max(FIRST_CAPACITY))?;
        }
        // SAFETY: `data` holds `capacity` bytes, kept alive by `reference`;
        // only this thread writes them, and JS reads them only during the call.
        unsafe { ptr::copy_nonoverlapping(records.as_ptr(), self.data, records.len()) };
        let mut buffer = ptr::null_mut();
        check_status!(unsafe { sys::napi_get_reference_value(env, self.reference, &mut buffer) })?;
        Ok(JsRaw(buffer))
    }

    fn grow(&mut self, capacity: usize) -> Result<()> {
        let env = self.env;
        let (mut buffer, mut data, mut reference) =
            (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        check_status!(
            unsafe { sys::napi_create_buffer(env, capacity, &mut data, &mut buffer) },
            "allocate a Buffer for batch records"
        )?;
        check_status!(unsafe { sys::napi_create_reference(env, buffer, 1, &mut reference) })?;
        self.release();
        self.reference = reference;
        self.data = data.cast();
        self.capacity = capacity;
        Ok(())
    }

    fn release(&mut self) {
        if !self.reference.is_null() {
            // Nothing to do if it fails: the Buffer then lives until the process ends.
            let _ = unsafe { sys::napi_delete_reference(self.env, self.reference) };
            self.reference = ptr::null_mut();
        }
    }
}

impl Drop for RecordBuffer {
    /// Dropped with the batch listener, on the JS thread.
    fn drop(&mut self) {
        self.release();
    }
}

/// A JS value made here, handed on as it is.
pub struct JsRaw(sys::napi_value);

impl ToNapiValue for JsRaw {
    unsafe fn to_napi_value(_env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        Ok(val.0)
    }
}
