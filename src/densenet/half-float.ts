// IEEE binary16 (F16) and bfloat16 (BF16) as bit patterns, to and from float32: what
// safetensors checkpoints store their half-precision tensors as. Exact: decoding is a table of
// all 65,536 values; encoding rounds to nearest even, keeps NaN a NaN and overflows to ±inf.

let f16Table: Uint32Array | undefined;

/**
 * The float32 bit pattern of every f16 value (`table[h]` for half `h`), built on first use: one
 * lookup per element beats the branchy decode on 10M-element checkpoints, and writing bits keeps
 * NaN payloads.
 */
export function halfToFloatBits(): Uint32Array {
  if (f16Table) return f16Table;
  const table = new Uint32Array(65536);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const man = h & 0x3ff;
    if (exp === 0) {
      f[0] = man * 2 ** -24; // subnormal (or zero): exact in float32
      table[h] = (sign | u[0]!) >>> 0;
    } else if (exp === 31) {
      table[h] = (sign | 0x7f800000 | (man << 13)) >>> 0;
    } else {
      table[h] = (sign | ((exp + 112) << 23) | (man << 13)) >>> 0;
    }
  }
  return (f16Table = table);
}

/** IEEE binary16, round-to-nearest-even; overflow becomes ±inf, NaN stays a (quiet) NaN. */
export function float32ToFloat16(value: Float32Array): Uint16Array {
  const bits = new Uint32Array(value.buffer, value.byteOffset, value.length);
  const out = new Uint16Array(value.length);
  for (let i = 0; i < value.length; i++) {
    const f = bits[i]!;
    const sign = (f >>> 16) & 0x8000;
    const abs = f & 0x7fffffff;
    let h: number;
    if (abs > 0x7f800000) h = 0x7e00 | ((abs >>> 13) & 0x3ff);
    else if (abs >= 0x477ff000) h = 0x7c00; // ≥ 65520, the tie between 65504 and 2^16, rounds to inf
    else if (abs < 0x38800000) {
      // Below the smallest normal: the result is round(|x| · 2^24) as a subnormal mantissa;
      // the product is exact in a double, and 1024 carries correctly into the smallest normal.
      const x = Math.abs(value[i]!) * 2 ** 24;
      const fl = Math.floor(x);
      const d = x - fl;
      h = d > 0.5 || (d === 0.5 && (fl & 1) === 1) ? fl + 1 : fl;
    } else {
      h = (((abs >>> 23) - 112) << 10) | ((abs >>> 13) & 0x3ff);
      const rest = abs & 0x1fff;
      if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++; // a mantissa carry bumps the exponent, as it should
    }
    out[i] = sign | h;
  }
  return out;
}

/** bfloat16 (the top half of a float32), round-to-nearest-even; NaN stays a (quiet) NaN. */
export function float32ToBfloat16(value: Float32Array): Uint16Array {
  const bits = new Uint32Array(value.buffer, value.byteOffset, value.length);
  const out = new Uint16Array(value.length);
  for (let i = 0; i < value.length; i++) {
    const f = bits[i]!;
    out[i] = (f & 0x7fffffff) > 0x7f800000 ? (f >>> 16) | 0x0040 : (f + 0x7fff + ((f >>> 16) & 1)) >>> 16;
  }
  return out;
}
