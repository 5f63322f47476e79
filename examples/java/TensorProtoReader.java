import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Reads a serialized {@code onnx.TensorProto} (a baton golden vector, {@code input_K.pb} or
 * {@code output_K.pb}) with the Java standard library only: a small protobuf decoder of the fields
 * ONNX tensors use (dims=1, data_type=2, float_data=4, int32_data=5, string_data=6, int64_data=7,
 * name=8, raw_data=9, double_data=10, uint64_data=11), packed or not.
 *
 * <p>Values are kept by type: {@code float[]} (FLOAT), {@code double[]} (DOUBLE), {@code long[]}
 * (INT64, UINT64, UINT32), {@code int[]} (INT32, INT16, INT8, UINT16), {@code byte[]} (BOOL,
 * UINT8), {@code String[]} (STRING).
 *
 * <p>{@code java TensorProtoReader.java FILE.pb ...} prints each tensor as one line of JSON.
 */
public final class TensorProtoReader {
  public static final int FLOAT = 1, UINT8 = 2, INT8 = 3, UINT16 = 4, INT16 = 5, INT32 = 6,
      INT64 = 7, STRING = 8, BOOL = 9, DOUBLE = 11, UINT32 = 12, UINT64 = 13;

  public final String name;
  public final long[] dims;
  public final int dataType;
  public final Object values;

  private TensorProtoReader(String name, long[] dims, int dataType, Object values) {
    this.name = name;
    this.dims = dims;
    this.dataType = dataType;
    this.values = values;
  }

  public int count() {
    long n = 1;
    for (long d : dims) n *= d;
    return Math.toIntExact(n);
  }

  /** Element {@code i} as a double (numbers and bools). */
  public double number(int i) {
    if (values instanceof float[] f) return f[i];
    if (values instanceof double[] d) return d[i];
    if (values instanceof long[] l) return l[i];
    if (values instanceof int[] n) return n[i];
    if (values instanceof byte[] b) return dataType == UINT8 ? (b[i] & 0xff) : b[i];
    throw new IllegalStateException(name + " holds text, not numbers");
  }

  /** Element {@code i} as text, for exact comparison of labels. */
  public String text(int i) {
    if (values instanceof String[] s) return s[i];
    if (values instanceof float[] || values instanceof double[]) {
      double v = number(i);
      return v == Math.rint(v) && !Double.isInfinite(v) ? Long.toString((long) v) : Double.toString(v);
    }
    return Long.toString((long) number(i));
  }

  public static TensorProtoReader read(Path path) throws IOException {
    return read(Files.readAllBytes(path));
  }

  public static TensorProtoReader read(byte[] bytes) {
    ByteBuffer in = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    String name = "";
    int dataType = 0;
    byte[] raw = null;
    List<Long> dims = new ArrayList<>();
    List<Long> ints = new ArrayList<>();
    List<Double> reals = new ArrayList<>();
    List<String> strings = new ArrayList<>();
    while (in.hasRemaining()) {
      long tag = varint(in);
      int field = (int) (tag >>> 3), wire = (int) (tag & 7);
      switch (field) {
        case 1, 5, 7, 11 -> { // dims, int32_data, int64_data, uint64_data: varints
          List<Long> into = field == 1 ? dims : ints;
          if (wire == 2) {
            ByteBuffer run = slice(in);
            while (run.hasRemaining()) into.add(varint(run));
          } else {
            into.add(varint(in));
          }
        }
        case 4, 10 -> { // float_data, double_data
          ByteBuffer run = wire == 2 ? slice(in) : in;
          do {
            reals.add(field == 4 ? (double) run.getFloat() : run.getDouble());
          } while (wire == 2 && run.hasRemaining());
        }
        case 2 -> dataType = (int) varint(in);
        case 6 -> strings.add(StandardCharsets.UTF_8.decode(slice(in)).toString());
        case 8 -> name = StandardCharsets.UTF_8.decode(slice(in)).toString();
        case 9 -> {
          ByteBuffer run = slice(in);
          raw = new byte[run.remaining()];
          run.get(raw);
        }
        case 14 -> {
          if (varint(in) == 1) throw new IllegalArgumentException("external tensor data");
        }
        default -> skip(in, wire);
      }
    }
    long[] shape = dims.stream().mapToLong(Long::longValue).toArray();
    long n = 1;
    for (long d : shape) n *= d;
    int count = Math.toIntExact(n);
    Object values = decode(dataType, count, raw, ints, reals, strings);
    int found = java.lang.reflect.Array.getLength(values);
    if (found != count) {
      throw new IllegalArgumentException(
          name + ": " + found + " values for dims " + Arrays.toString(shape));
    }
    return new TensorProtoReader(name, shape, dataType, values);
  }

  private static Object decode(int type, int count, byte[] raw, List<Long> ints,
                               List<Double> reals, List<String> strings) {
    if (type == STRING) return strings.toArray(new String[0]);
    ByteBuffer r = raw == null ? null : ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
    switch (type) {
      case FLOAT: {
        float[] out = new float[r == null ? reals.size() : raw.length / 4];
        for (int i = 0; i < out.length; i++) out[i] = r == null ? reals.get(i).floatValue() : r.getFloat();
        return out;
      }
      case DOUBLE: {
        double[] out = new double[r == null ? reals.size() : raw.length / 8];
        for (int i = 0; i < out.length; i++) out[i] = r == null ? reals.get(i) : r.getDouble();
        return out;
      }
      case INT64: case UINT64: case UINT32: {
        int width = type == UINT32 ? 4 : 8;
        long[] out = new long[r == null ? ints.size() : raw.length / width];
        for (int i = 0; i < out.length; i++) {
          out[i] = r == null ? ints.get(i) : width == 8 ? r.getLong() : r.getInt() & 0xffffffffL;
        }
        return out;
      }
      case INT32: case INT16: case INT8: case UINT16: {
        int width = type == INT32 ? 4 : type == INT8 ? 1 : 2;
        int[] out = new int[r == null ? ints.size() : raw.length / width];
        for (int i = 0; i < out.length; i++) {
          out[i] = r == null ? ints.get(i).intValue()
              : width == 4 ? r.getInt() : width == 1 ? r.get()
              : type == UINT16 ? r.getShort() & 0xffff : r.getShort();
        }
        return out;
      }
      case BOOL: case UINT8: {
        if (raw != null) return raw;
        byte[] out = new byte[ints.size()];
        for (int i = 0; i < out.length; i++) out[i] = ints.get(i).byteValue();
        return out;
      }
      default:
        throw new IllegalArgumentException("unsupported TensorProto data_type " + type);
    }
  }

  private static long varint(ByteBuffer in) {
    long v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      byte b = in.get();
      v |= (long) (b & 0x7f) << shift;
      if (b >= 0) return v;
    }
    throw new IllegalArgumentException("malformed varint");
  }

  private static ByteBuffer slice(ByteBuffer in) {
    int n = Math.toIntExact(varint(in));
    ByteBuffer run = in.slice().order(ByteOrder.LITTLE_ENDIAN);
    run.limit(n);
    in.position(in.position() + n);
    return run;
  }

  private static void skip(ByteBuffer in, int wire) {
    switch (wire) {
      case 0 -> varint(in);
      case 1 -> in.position(in.position() + 8);
      case 2 -> slice(in);
      case 5 -> in.position(in.position() + 4);
      default -> throw new IllegalArgumentException("unknown protobuf wire type " + wire);
    }
  }

  public static void main(String[] args) throws IOException {
    for (String file : args) {
      TensorProtoReader t = read(Path.of(file));
      StringBuilder json = new StringBuilder();
      json.append("{\"name\": \"").append(t.name).append("\", \"data_type\": ").append(t.dataType)
          .append(", \"dims\": ").append(Arrays.toString(t.dims)).append(", \"values\": [");
      for (int i = 0; i < t.count(); i++) {
        if (i > 0) json.append(", ");
        if (t.dataType == STRING) {
          json.append('"').append(t.text(i).replace("\\", "\\\\").replace("\"", "\\\"")).append('"');
        } else {
          double v = t.number(i);
          json.append(Double.isFinite(v) ? Double.toString(v) : Double.isNaN(v) ? "NaN"
                      : v > 0 ? "Infinity" : "-Infinity");
        }
      }
      System.out.println(json.append("]}"));
    }
  }
}
