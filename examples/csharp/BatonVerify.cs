// Verifies a baton bundle directory on this machine with ONNX Runtime for .NET, as
// `baton verify` does: sha256 of every file in baton.json, then the golden vectors
// (test_data_set_0/input_K.pb in, output_K.pb expected) at the bundle's tolerances.
// Exit codes: 0 passed, 1 failed, 2 unreadable bundle.
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

if (args.Length != 1) { Console.Error.WriteLine("usage: BatonVerify BUNDLE_DIR"); return 2; }
var bundle = Path.GetFullPath(args[0]);
var manifestPath = Path.Combine(bundle, "baton.json");
if (!File.Exists(manifestPath)) { Console.Error.WriteLine($"error: {bundle} has no baton.json"); return 2; }
using var doc = JsonDocument.Parse(File.ReadAllBytes(manifestPath));
var manifest = doc.RootElement;
if (manifest.GetProperty("schema_version").GetInt32() != 1)
{
    Console.Error.WriteLine("error: baton.json has another schema_version; this reads 1");
    return 2;
}
var problems = new List<string>();

// 1. every file against its sha256
var modelOk = true;
foreach (var file in manifest.GetProperty("files").EnumerateObject())
{
    var path = Path.GetFullPath(Path.Combine(bundle, file.Name));
    string? found = path.StartsWith(bundle + Path.DirectorySeparatorChar) && File.Exists(path)
        ? Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path))).ToLowerInvariant() : null;
    if (found != file.Value.GetString())
    {
        problems.Add($"file {file.Name}: " + (found is null ? "missing" : "sha256 differs"));
        modelOk &= file.Name != "model.onnx";
    }
}

// 2. the golden vectors on this machine's ONNX Runtime (CPU)
if (modelOk)
{
    var golden = Path.Combine(bundle, "test_data_set_0");
    var feeds = new List<NamedOnnxValue>();
    var k = 0;
    foreach (var input in manifest.GetProperty("inputs").EnumerateArray())
    {
        var t = TensorProto.Read(Path.Combine(golden, $"input_{k++}.pb"));
        feeds.Add(t.ToNamedOnnxValue(input.GetProperty("name").GetString()!));
    }
    using var session = new InferenceSession(Path.Combine(bundle, "model.onnx"));
    using var results = session.Run(feeds);
    var actual = results.ToDictionary(r => r.Name, r => r.Value);
    k = 0;
    foreach (var spec in manifest.GetProperty("outputs").EnumerateArray())
    {
        var name = spec.GetProperty("name").GetString()!;
        var kind = spec.TryGetProperty("kind", out var kd) ? kd.GetString()! : "tensor";
        var expected = TensorProto.Read(Path.Combine(golden, $"output_{k++}.pb"));
        var tol = manifest.GetProperty("tolerances").GetProperty(name);
        var verdict = Compare(kind, tol, expected, Flatten(actual[name]));
        Console.WriteLine($"  {name} ({kind}): {verdict}");
        if (!verdict.StartsWith("pass")) problems.Add($"output {name}: {verdict}");
    }
}
else
{
    problems.Add("model.onnx differs from its hash; golden vectors not run on it");
}

// 3. the verdict recorded at conversion
if (manifest.TryGetProperty("parity", out var parity) && parity.TryGetProperty("passed", out var passed)
    && passed.ValueKind == JsonValueKind.False)
{
    problems.Add("the bundle failed parity when it was converted");
}
foreach (var p in problems) Console.WriteLine($"problem: {p}");
Console.WriteLine($"{(problems.Count == 0 ? "PASSED" : "FAILED")}: verify {args[0]} on onnxruntime-dotnet");
return problems.Count == 0 ? 0 : 1;

// Labels: exact agreement on at least `agreement` of the rows; numbers: per element
// |actual - expected| <= atol + rtol * |expected| (equal values, NaN included, pass).
static string Compare(string kind, JsonElement tol, TensorProto expected, object[] actual)
{
    var n = expected.Values.Length;
    if (actual.Length != n) return $"FAIL: {actual.Length} values, expected {n}";
    var rows = expected.Dims.Length == 0 ? 1 : (int)expected.Dims[0];
    var per = rows == 0 ? 0 : n / rows;
    var labels = kind == "label" || expected.Values is string[] || actual is { Length: > 0 } && actual[0] is string;
    double atol = tol.GetProperty("atol").GetDouble(), rtol = tol.GetProperty("rtol").GetDouble();
    var badRows = 0;
    for (var r = 0; r < rows; r++)
    {
        var ok = true;
        for (var i = r * per; i < (r + 1) * per; i++)
        {
            if (labels)
            {
                ok &= TensorProto.Text(expected.Values.GetValue(i)!) == TensorProto.Text(actual[i]);
                continue;
            }
            double a = Convert.ToDouble(actual[i]), b = Convert.ToDouble(expected.Values.GetValue(i));
            var equal = a == b || (double.IsNaN(a) && double.IsNaN(b));
            ok &= equal || (double.IsFinite(b) && Math.Abs(a - b) <= atol + rtol * Math.Abs(b));
        }
        if (!ok) badRows++;
    }
    if (labels)
    {
        var agreement = rows == 0 ? 1.0 : (rows - badRows) / (double)rows;
        var gate = tol.GetProperty("agreement").GetDouble();
        return $"{(agreement >= gate ? "pass" : "FAIL")}: {rows - badRows} of {rows} labels agree";
    }
    return $"{(badRows == 0 ? "pass" : "FAIL")}: {badRows} of {rows} rows outside atol {atol} + rtol {rtol}";
}

static object[] Flatten(object value) => value switch
{
    Tensor<float> t => t.ToArray().Cast<object>().ToArray(),
    Tensor<double> t => t.ToArray().Cast<object>().ToArray(),
    Tensor<long> t => t.ToArray().Cast<object>().ToArray(),
    Tensor<int> t => t.ToArray().Cast<object>().ToArray(),
    Tensor<bool> t => t.ToArray().Cast<object>().ToArray(),
    Tensor<string> t => t.ToArray().Cast<object>().ToArray(),
    _ => throw new InvalidDataException($"unsupported output {value.GetType()}"),
};

/// <summary>A serialized onnx.TensorProto (a golden vector), read with a small protobuf
/// decoder of the fields ONNX tensors use: dims=1, data_type=2, float_data=4, int32_data=5,
/// string_data=6, int64_data=7, name=8, raw_data=9, double_data=10 (packed or not).</summary>
sealed class TensorProto
{
    public string Name = "";
    public long[] Dims = [];
    public int DataType;
    public Array Values = Array.Empty<object>();

    public static TensorProto Read(string path)
    {
        var buf = File.ReadAllBytes(path);
        var t = new TensorProto();
        var dims = new List<long>();
        var ints = new List<long>();
        var reals = new List<double>();
        var strings = new List<string>();
        byte[]? raw = null;
        var pos = 0;
        ulong Varint()
        {
            ulong v = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                var b = buf[pos++];
                v |= (ulong)(b & 0x7f) << shift;
                if (b < 0x80) return v;
            }
            throw new InvalidDataException($"{path}: malformed varint");
        }
        ArraySegment<byte> Bytes()
        {
            var n = (int)Varint();
            pos += n;
            return new ArraySegment<byte>(buf, pos - n, n);
        }
        while (pos < buf.Length)
        {
            var tag = Varint();
            int field = (int)(tag >> 3), wire = (int)(tag & 7);
            switch (field)
            {
                case 1 or 5 or 7:
                {
                    var into = field == 1 ? dims : ints;
                    if (wire != 2) { into.Add((long)Varint()); break; }
                    var end = (int)Varint() + pos;
                    while (pos < end) into.Add((long)Varint());
                    break;
                }
                case 4 or 10:
                {
                    var width = field == 4 ? 4 : 8;
                    var run = wire == 2 ? Bytes() : new ArraySegment<byte>(buf, (pos += width) - width, width);
                    for (var i = 0; i < run.Count; i += width)
                        reals.Add(width == 4 ? BitConverter.ToSingle(run.AsSpan(i, 4)) : BitConverter.ToDouble(run.AsSpan(i, 8)));
                    break;
                }
                case 2: t.DataType = (int)Varint(); break;
                case 6: strings.Add(Encoding.UTF8.GetString(Bytes())); break;
                case 8: t.Name = Encoding.UTF8.GetString(Bytes()); break;
                case 9: raw = Bytes().ToArray(); break;
                default:
                    if (wire == 0) Varint();
                    else if (wire == 1) pos += 8;
                    else if (wire == 2) Bytes();
                    else if (wire == 5) pos += 4;
                    else throw new InvalidDataException($"{path}: wire type {wire}");
                    break;
            }
        }
        t.Dims = dims.ToArray();
        // raw_data is little-endian, like every machine .NET runs on (BitConverter.IsLittleEndian)
        t.Values = t.DataType switch
        {
            1 => raw is null ? reals.Select(v => (float)v).ToArray() : MemoryMarshal.Cast<byte, float>(raw).ToArray(),
            11 => raw is null ? reals.ToArray() : MemoryMarshal.Cast<byte, double>(raw).ToArray(),
            7 => raw is null ? ints.ToArray() : MemoryMarshal.Cast<byte, long>(raw).ToArray(),
            6 => raw is null ? ints.Select(v => (int)v).ToArray() : MemoryMarshal.Cast<byte, int>(raw).ToArray(),
            9 => raw is null ? ints.Select(v => v != 0).ToArray() : raw.Select(b => b != 0).ToArray(),
            8 => strings.ToArray(),
            _ => throw new InvalidDataException($"{path}: unsupported data_type {t.DataType}"),
        };
        return t;
    }

    public NamedOnnxValue ToNamedOnnxValue(string name)
    {
        var shape = Dims.Select(d => (int)d).ToArray();
        return Values switch
        {
            float[] v => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(v, shape)),
            double[] v => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<double>(v, shape)),
            long[] v => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<long>(v, shape)),
            int[] v => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<int>(v, shape)),
            bool[] v => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<bool>(v, shape)),
            string[] v => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<string>(v, shape)),
            _ => throw new InvalidDataException($"{Name}: unsupported values"),
        };
    }

    // labels compare as text: 1, 1L and 1.0 are the same label; bools as 0/1
    public static string Text(object v) => v switch
    {
        bool b => b ? "1" : "0",
        float or double when Convert.ToDouble(v) is var d && d == Math.Round(d) && double.IsFinite(d) => ((long)d).ToString(),
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };
}
