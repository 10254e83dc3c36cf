/**
 * The entries of a batch's WebSocket messages (crates/core/src/record.rs,
 * `ws_message`): per message, the socket's id (f64), its size (u32: UTF-16
 * code units of the batch's text, or bytes of its binary buffer) and its kind
 * (u32), little-endian, 16 bytes. Read as numbers in place: text fields would
 * cost a split, a parse and often an interned string each.
 */
const ENTRY = 16
const TEXT = 1

export class WsMetaReader {
  private bytes: Buffer | undefined
  private view: DataView | undefined
  /** Where the current message's entry starts. */
  private at = -ENTRY

  /** A new batch's entries; the engine passes the same Buffer back while it fits. */
  reset(bytes: Buffer | undefined): void {
    this.at = -ENTRY
    if (bytes === undefined || bytes === this.bytes) return
    this.bytes = bytes
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  /** Step to the next message's entry (one per `M` record, in order). */
  next(): void {
    this.at += ENTRY
  }

  get id(): number {
    return this.view!.getFloat64(this.at, true)
  }

  get size(): number {
    return this.view!.getUint32(this.at + 8, true)
  }

  get isText(): boolean {
    return this.view!.getUint32(this.at + 12, true) === TEXT
  }
}
