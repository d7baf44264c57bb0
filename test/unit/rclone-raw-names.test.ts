/** Names that are not valid UTF-8: their exact bytes survive the trip through rclonesync's strings. */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { decodeName, encodeName, hasRawBytes, includeRuleFor, lossyName, printableName, viaShell } from '../../src/rclone/raw-names.ts';

const bytes = (...values: number[]) => Buffer.from(values);

describe('decodeName / encodeName', () => {
  it('leaves valid UTF-8 as Node decodes it', () => {
    for (const text of ['plain.txt', 'café', 'cafe\u0301', 'Русский', '測試', '😀 emoji', 'real_\uFFFD', '␙ symbol']) {
      const raw = Buffer.from(text, 'utf8');
      expect(decodeName(raw)).toBe(text);
      expect(hasRawBytes(decodeName(raw))).toBe(false);
      expect(encodeName(text)).toEqual(raw);
    }
  });

  it('marks each invalid byte on its own, as Go (and so lsjson) does', () => {
    // The corpus name, a truncated sequence, an encoded surrogate, an overlong NUL, a byte past U+10FFFF.
    expect(decodeName(Buffer.from('file3_\x19_\x81_\xfe', 'latin1'))).toBe('file3_\x19_\udc81_\udcfe');
    expect(decodeName(bytes(0x61, 0xe2, 0x82, 0x62))).toBe('a\udce2\udc82b');
    expect(decodeName(bytes(0xed, 0xa0, 0x80))).toBe('\udced\udca0\udc80');
    expect(decodeName(bytes(0xc0, 0x80))).toBe('\udcc0\udc80');
    expect(decodeName(bytes(0xf4, 0x90, 0x80, 0x80))).toBe('\udcf4\udc90\udc80\udc80');
    expect(decodeName(bytes(0xe2, 0x82, 0xac, 0xe2))).toBe('€\udce2');
    expect(lossyName(decodeName(Buffer.from('trunc_\xe2\x82_\xed\xa0\x80.txt', 'latin1')))).toBe('trunc_\ufffd\ufffd_\ufffd\ufffd\ufffd.txt');
  });

  it('gives back the exact bytes of any name', () => {
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 256;
    for (let n = 0; n < 500; n++) {
      const raw = Buffer.from(Array.from({ length: 1 + (n % 17) }, next).map((b) => (b === 0x2f || b === 0 ? 0x41 : b)));
      const name = decodeName(raw);
      expect(encodeName(name)).toEqual(raw);
      // Survives the snapshot's JSON lines.
      expect(encodeName(JSON.parse(JSON.stringify(name)) as string)).toEqual(raw);
    }
  });

  it('tells surrogate pairs (valid characters) from escaped bytes', () => {
    expect(hasRawBytes('\u{10080}')).toBe(false);
    expect(encodeName('\u{10080}')).toEqual(Buffer.from('\u{10080}', 'utf8'));
    expect(hasRawBytes('x\udc80')).toBe(true);
  });
});

describe('what rclone and people get to see', () => {
  it('prints escaped bytes readably', () => {
    expect(printableName('file3_␙_\udc81_\udcfe')).toBe('file3_␙_\\x81_\\xFE');
  });

  it('turns a lossy name into an anchored filter rule that only glob-escapes', () => {
    expect(includeRuleFor('glob [x]*?{y} \ufffd .txt')).toBe('+ /glob?\\[x\\]\\*\\?\\{y\\}???.txt');
    expect(includeRuleFor('dir\\name/\ufffd')).toBe('+ /dir\\\\name/?');
  });

  it('hands the exact bytes to a program through /bin/sh', () => {
    for (const name of ['file3_␙_\udc81_\udcfe', 'back\\slash \\0101 %b $HOME `x` "q" \'s\'', 'trailing newline\n\n', '-n']) {
      const [command, ...args] = viaShell(['/usr/bin/printf', '%s', name]);
      expect(execFileSync(command!, args)).toEqual(encodeName(name));
    }
  });
});
