// h2frames: raw HTTP/2 frames for tests that must send what a well-behaved client never would
// (malformed frames, streams over the advertised limit). RFC 9113 section 4.1 frame layout.

export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

// One frame: a 9-byte header (length, |type|, |flags|, |stream|) and |payload|.
export function frame(type, flags, stream, payload = Buffer.alloc(0)) {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

// The complete frames in |buf|: [{type, flags, stream, payload}] (a partial last frame is left out).
export function parseFrames(buf) {
  const out = [];
  for (let off = 0; off + 9 <= buf.length;) {
    const len = buf.readUIntBE(off, 3);
    if (off + 9 + len > buf.length) break;
    out.push({ type: buf[off + 3], flags: buf[off + 4], stream: buf.readUInt32BE(off + 5) & 0x7fffffff,
      payload: buf.subarray(off + 9, off + 9 + len) });
    off += 9 + len;
  }
  return out;
}
