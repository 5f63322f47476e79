import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.lang.reflect.Array;
import java.nio.ByteBuffer;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Verifies a baton bundle directory on this machine with ONNX Runtime for Java, as
 * {@code baton verify} does: sha256 of every file in baton.json, then the golden vectors
 * (test_data_set_0/input_K.pb in, output_K.pb expected) at the bundle's tolerances.
 *
 * <p>Needs com.microsoft.onnxruntime:onnxruntime and com.google.code.gson:gson, plus
 * TensorProtoReader.java beside it. Exit codes: 0 passed, 1 failed, 2 unreadable bundle.
 */
public final class BatonVerify {
  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: java BatonVerify BUNDLE_DIR");
      System.exit(2);
    }
    Path bundle = Path.of(args[0]);
    Path manifestPath = bundle.resolve("baton.json");
    if (!Files.isRegularFile(manifestPath)) {
      System.err.println("error: " + bundle + " has no baton.json");
      System.exit(2);
    }
    JsonObject manifest = JsonParser.parseString(Files.readString(manifestPath)).getAsJsonObject();
    if (manifest.get("schema_version").getAsInt() != 1) {
      System.err.println("error: baton.json has another schema_version; this reads 1");
      System.exit(2);
    }
    List<String> problems = new ArrayList<>();

    // 1. every file against its sha256
    boolean modelOk = true;
    for (Map.Entry<String, JsonElement> e : manifest.getAsJsonObject("files").entrySet()) {
      Path file = bundle.resolve(e.getKey()).normalize();
      String want = e.getValue().getAsString();
      String found = Files.isRegularFile(file) && file.startsWith(bundle.normalize())
          ? HexFormat.of().formatHex(
              MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)))
          : null;
      if (!want.equals(found)) {
        problems.add("file " + e.getKey() + ": " + (found == null ? "missing" : "sha256 differs"));
        modelOk &= !e.getKey().equals("model.onnx");
      }
    }

    // 2. the golden vectors on this machine's ONNX Runtime (CPU)
    if (modelOk) {
      Path golden = bundle.resolve("test_data_set_0");
      OrtEnvironment env = OrtEnvironment.getEnvironment();
      Map<String, OnnxTensor> feeds = new LinkedHashMap<>();
      int k = 0;
      for (JsonElement input : manifest.getAsJsonArray("inputs")) {
        TensorProtoReader t = TensorProtoReader.read(golden.resolve("input_" + k++ + ".pb"));
        feeds.put(input.getAsJsonObject().get("name").getAsString(), toOrt(env, t));
      }
      try (OrtSession session = env.createSession(
               bundle.resolve("model.onnx").toString(), new OrtSession.SessionOptions());
           OrtSession.Result result = session.run(feeds)) {
        k = 0;
        for (JsonElement o : manifest.getAsJsonArray("outputs")) {
          JsonObject spec = o.getAsJsonObject();
          String name = spec.get("name").getAsString();
          String kind = spec.has("kind") ? spec.get("kind").getAsString() : "tensor";
          TensorProtoReader expected = TensorProtoReader.read(golden.resolve("output_" + k++ + ".pb"));
          OnnxValue actual = result.get(name).orElseThrow();
          JsonObject tol = manifest.getAsJsonObject("tolerances").getAsJsonObject(name);
          String verdict = compare(kind, tol, expected, (OnnxTensor) actual);
          System.out.println("  " + name + " (" + kind + "): " + verdict);
          if (!verdict.startsWith("pass")) problems.add("output " + name + ": " + verdict);
        }
      }
      for (OnnxTensor t : feeds.values()) t.close();
    } else {
      problems.add("model.onnx differs from its hash; golden vectors not run on it");
    }

    // 3. the verdict recorded at conversion
    JsonObject parity = manifest.getAsJsonObject("parity");
    if (parity != null && parity.has("passed") && !parity.get("passed").getAsBoolean()) {
      problems.add("the bundle failed parity when it was converted");
    }
    problems.forEach(p -> System.out.println("problem: " + p));
    System.out.println((problems.isEmpty() ? "PASSED" : "FAILED") + ": verify " + bundle
        + " on onnxruntime-java");
    System.exit(problems.isEmpty() ? 0 : 1);
  }

  static OnnxTensor toOrt(OrtEnvironment env, TensorProtoReader t) throws OrtException {
    switch (t.dataType) {
      case TensorProtoReader.FLOAT:
        return OnnxTensor.createTensor(env, FloatBuffer.wrap((float[]) t.values), t.dims);
      case TensorProtoReader.DOUBLE:
        return OnnxTensor.createTensor(env, DoubleBuffer.wrap((double[]) t.values), t.dims);
      case TensorProtoReader.INT64:
        return OnnxTensor.createTensor(env, LongBuffer.wrap((long[]) t.values), t.dims);
      case TensorProtoReader.INT32:
        return OnnxTensor.createTensor(env, IntBuffer.wrap((int[]) t.values), t.dims);
      case TensorProtoReader.BOOL: {
        byte[] bools = (byte[]) t.values;
        ByteBuffer direct = ByteBuffer.allocateDirect(bools.length).put(bools);
        direct.rewind();
        return OnnxTensor.createTensor(env, direct, t.dims, OnnxJavaType.BOOL);
      }
      case TensorProtoReader.STRING:
        return OnnxTensor.createTensor(env, (String[]) t.values, t.dims);
      default:
        throw new IllegalArgumentException(t.name + ": data_type " + t.dataType);
    }
  }

  /** Labels: exact agreement on at least `agreement` of the rows; numbers: per element
   * |actual - expected| <= atol + rtol * |expected| (equal values, NaN included, pass). */
  static String compare(String kind, JsonObject tol, TensorProtoReader expected, OnnxTensor actual)
      throws OrtException {
    int n = expected.count();
    int rows = expected.dims.length == 0 ? 1 : (int) expected.dims[0];
    int per = rows == 0 ? 0 : n / rows;
    Object got = flat(actual);
    if (Array.getLength(got) != n) {
      return "FAIL: " + Array.getLength(got) + " values, expected " + n;
    }
    int badRows = 0;
    boolean labels = kind.equals("label") || got instanceof String[]
        || expected.dataType == TensorProtoReader.STRING;
    double atol = tol.get("atol").getAsDouble(), rtol = tol.get("rtol").getAsDouble();
    for (int r = 0; r < rows; r++) {
      boolean ok = true;
      for (int i = r * per; i < (r + 1) * per; i++) {
        if (labels) {
          ok &= expected.text(i).equals(text(got, i));
        } else {
          double a = ((Number) Array.get(got, i)).doubleValue(), b = expected.number(i);
          boolean equal = a == b || (Double.isNaN(a) && Double.isNaN(b));
          ok &= equal || (Double.isFinite(b) && Math.abs(a - b) <= atol + rtol * Math.abs(b));
        }
      }
      badRows += ok ? 0 : 1;
    }
    if (labels) {
      double agreement = rows == 0 ? 1.0 : (rows - badRows) / (double) rows;
      double gate = tol.get("agreement").getAsDouble();
      return (agreement >= gate ? "pass" : "FAIL") + ": " + (rows - badRows) + " of " + rows
          + " labels agree";
    }
    return (badRows == 0 ? "pass" : "FAIL") + ": " + badRows + " of " + rows
        + " rows outside atol " + atol + " + rtol " + rtol;
  }

  /** An output tensor's values, flattened: a primitive array or String[]. */
  static Object flat(OnnxTensor t) throws OrtException {
    switch (t.getInfo().type) {
      case FLOAT: return t.getFloatBuffer().array();
      case DOUBLE: return t.getDoubleBuffer().array();
      case INT64: return t.getLongBuffer().array();
      case INT32: return t.getIntBuffer().array();
      case BOOL: case UINT8: case INT8: return t.getByteBuffer().array();
      case STRING: {
        List<String> out = new ArrayList<>();
        flatten(t.getValue(), out);
        return out.toArray(new String[0]);
      }
      default: throw new IllegalArgumentException("output type " + t.getInfo().type);
    }
  }

  static void flatten(Object value, List<String> out) {
    if (value instanceof String s) {
      out.add(s);
    } else {
      for (int i = 0; i < Array.getLength(value); i++) flatten(Array.get(value, i), out);
    }
  }

  static String text(Object values, int i) {
    Object v = Array.get(values, i);
    if (v instanceof Float || v instanceof Double) {
      double d = ((Number) v).doubleValue();
      return d == Math.rint(d) && !Double.isInfinite(d) ? Long.toString((long) d) : Double.toString(d);
    }
    return v.toString();
  }
}
