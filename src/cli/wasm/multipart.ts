/** multipart/form-data as a stream, so an upload's progress can be shown as the bytes leave. */
import { randomBytes } from 'node:crypto';

export function multipartBody(fields: Record<string, string>, file: { name: string; bytes: Buffer }, onProgress: (sent: number) => void) {
  const boundary = `----vecron${randomBytes(12).toString('hex')}`;
  const head = Buffer.from(
    Object.entries(fields)
      .map(([k, v]) => `--${boundary}\r\ncontent-disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)
      .join('') +
      `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="${file.name.replace(/"/g, '')}"\r\ncontent-type: application/wasm\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const CHUNK = 64 * 1024;
  let offset = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset === 0) controller.enqueue(head);
      if (offset < file.bytes.length) {
        const end = Math.min(file.bytes.length, offset + CHUNK);
        controller.enqueue(file.bytes.subarray(offset, end));
        offset = end;
        onProgress(offset);
        if (offset < file.bytes.length) return;
      }
      controller.enqueue(tail);
      controller.close();
    },
  });
  return { body, contentType: `multipart/form-data; boundary=${boundary}`, length: head.length + file.bytes.length + tail.length };
}
