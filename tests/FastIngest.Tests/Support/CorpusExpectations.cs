using System.Text.RegularExpressions;

namespace FastIngest.Tests.Support;

/// <summary>One line of a SOURCES.md expectation: a kind (<c>message</c>, <c>status</c>, ...) and its key=value fields.</summary>
internal sealed record ExpectedLine(string Kind, Dictionary<string, string?> Fields, List<string> Flags)
{
    public string? this[string key] => Fields.TryGetValue(key, out var v) ? v : null;
    public bool Has(string key) => Fields.ContainsKey(key);
}

internal sealed class ExpectedChange
{
    public required int Entry { get; init; }
    public required int Index { get; init; }
    public required ExpectedLine Line { get; init; }
    public List<ExpectedLine> Contacts { get; } = [];
    public List<ExpectedLine> Messages { get; } = [];
    public List<ExpectedLine> Statuses { get; } = [];
    public List<ExpectedLine> ValueLines { get; } = [];
}

internal sealed class ExpectedPayload
{
    public required string File { get; init; }
    public string? Object { get; set; }
    public List<ExpectedLine> Entries { get; } = [];
    public List<ExpectedChange> Changes { get; } = [];
}

/// <summary>
/// Reads the expectations block of each payload in the corpus's SOURCES.md: the fields a correct parser extracts,
/// written by the corpus's authors in a small line format (<c>message id=... from=... type=...</c>).
/// </summary>
internal static partial class CorpusExpectations
{
    [GeneratedRegex(@"(?<key>[A-Za-z_][\w.\[\]]*)=(?<val>'(?:[^'\\]|\\.)*'|""(?:[^""\\]|\\.)*""|\[[^\]]*\]|\S+)|(?<flag>[A-Za-z_][\w.]*)")]
    private static partial Regex Token();

    [GeneratedRegex(@"^entry\[(\d+)\]\.id$")]
    private static partial Regex EntryKey();

    [GeneratedRegex(@"^change\[(\d+)\]$")]
    private static partial Regex ChangeKey();

    public static IReadOnlyDictionary<string, ExpectedPayload> Load(string corpusDir)
    {
        var result = new Dictionary<string, ExpectedPayload>(StringComparer.Ordinal);
        ExpectedPayload? current = null;
        ExpectedChange? change = null;
        var inBlock = false;
        foreach (var raw in File.ReadLines(Path.Combine(corpusDir, "SOURCES.md")))
        {
            if (raw.StartsWith("## ", StringComparison.Ordinal))
            {
                current = new ExpectedPayload { File = raw[3..].Trim() };
                result[current.File] = current;
                change = null;
                continue;
            }
            if (raw.StartsWith("```", StringComparison.Ordinal))
            {
                inBlock = !inBlock;
                continue;
            }
            if (!inBlock || current is null || string.IsNullOrWhiteSpace(raw))
                continue;

            var line = raw.Trim();
            if (line.StartsWith("object=", StringComparison.Ordinal))
            {
                current.Object = Unquote(line["object=".Length..]);
                continue;
            }
            var firstSpace = line.IndexOf(' ', StringComparison.Ordinal);
            var head = firstSpace < 0 ? line : line[..firstSpace];
            if (EntryKey().IsMatch(head.Split('=')[0]))
            {
                current.Entries.Add(ParseFields("entry", line));
                continue;
            }
            var cm = ChangeKey().Match(head);
            if (cm.Success)
            {
                change = new ExpectedChange
                {
                    Entry = current.Entries.Count - 1,
                    Index = int.Parse(cm.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture),
                    Line = ParseFields("change", line[(firstSpace + 1)..]),
                };
                current.Changes.Add(change);
                continue;
            }
            if (change is null)
                throw new FormatException($"{current.File}: line outside a change: {line}");
            var rest = firstSpace < 0 ? "" : line[(firstSpace + 1)..];
            switch (head)
            {
                case "contact": change.Contacts.Add(ParseFields(head, rest)); break;
                case "message": change.Messages.Add(ParseFields(head, rest)); break;
                case "status": change.Statuses.Add(ParseFields(head, rest)); break;
                case "value": change.ValueLines.Add(ParseFields(head, rest)); break;
                default:
                    if (head.StartsWith("value.", StringComparison.Ordinal))
                        change.ValueLines.Add(ParseFields("value", line));
                    else
                        throw new FormatException($"{current.File}: unknown line: {line}");
                    break;
            }
        }
        return result;
    }

    private static ExpectedLine ParseFields(string kind, string text)
    {
        // "(NO type field)" is prose, not a field.
        text = text.Replace("(NO type field)", "", StringComparison.Ordinal);
        var fields = new Dictionary<string, string?>(StringComparer.Ordinal);
        var flags = new List<string>();
        foreach (Match m in Token().Matches(text))
        {
            if (m.Groups["key"].Success)
                fields[m.Groups["key"].Value] = Unquote(m.Groups["val"].Value);
            else
                flags.Add(m.Groups["flag"].Value);
        }
        return new ExpectedLine(kind, fields, flags);
    }

    /// <summary>Python repr: 'x' or "x" is a string, None is absent.</summary>
    private static string? Unquote(string v)
    {
        if (v == "None")
            return null;
        if (v.Length >= 2 && (v[0] == '\'' || v[0] == '"') && v[^1] == v[0])
            return Regex.Unescape(v[1..^1]);
        return v;
    }
}
