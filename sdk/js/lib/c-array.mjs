// Bytes as a C array initialiser (the bytecode goes into the module as an ordinary data segment).

/** `const uint8_t NAME[] = {...};` with `const uint32_t NAME_size`. */
export function cArray(name, bytes) {
  const rows = [];
  for (let i = 0; i < bytes.length; i += 24) {
    rows.push(`  ${Array.from(bytes.subarray(i, i + 24), (b) => `0x${b.toString(16).padStart(2, '0')}`).join(',')},`);
  }
  return `const uint8_t ${name}[${Math.max(bytes.length, 1)}] = {\n${rows.join('\n') || '  0'}\n};\nconst uint32_t ${name}_size = ${bytes.length};\n`;
}

/** A C string literal (for module names and entry names, which are checked to be plain text). */
export const cString = (s) => JSON.stringify(s);
