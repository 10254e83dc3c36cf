/** Publish/subscribe among the sockets of this worker: `ws.subscribe(topic)`, `skitai.publish`. */

export interface Subscriber {
  send(data: string | Buffer): boolean
}

const topics = new Map<string, Set<Subscriber>>()

export function subscribe(topic: string, socket: Subscriber): void {
  if (typeof topic !== 'string' || topic === '') throw new TypeError('subscribe: a topic is a non-empty string')
  let set = topics.get(topic)
  if (set === undefined) topics.set(topic, (set = new Set()))
  set.add(socket)
}

export function unsubscribe(topic: string, socket: Subscriber): void {
  const set = topics.get(topic)
  if (set?.delete(socket) && set.size === 0) topics.delete(topic)
}

/** Send `message` to every subscriber of `topic` in this worker; the number reached. */
export function publish(topic: string, message: string | Buffer): number {
  if (typeof message !== 'string' && !Buffer.isBuffer(message)) throw new TypeError('publish: a message is a string or a Buffer')
  const set = topics.get(topic)
  if (set === undefined) return 0
  for (const socket of set) socket.send(message)
  return set.size
}
