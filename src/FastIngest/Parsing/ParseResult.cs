namespace FastIngest.Parsing;

/// <summary>Why a payload could not be parsed as a WhatsApp Cloud API webhook.</summary>
public enum ParseError : byte
{
    /// <summary>Parsed.</summary>
    None = 0,
    /// <summary>Not well-formed JSON (syntax, invalid UTF-8, nesting deeper than <see cref="WebhookParser.MaxDepth"/>, trailing bytes).</summary>
    InvalidJson,
    /// <summary>The root is not a JSON object.</summary>
    RootNotObject,
    /// <summary>The root has no <c>entry</c> array.</summary>
    MissingEntry,
}

/// <summary>The outcome of <see cref="WebhookParser.Parse"/>: success, or the error and the byte offset where it was found.</summary>
public readonly record struct ParseResult(ParseError Error, long BytePosition)
{
    /// <summary>True when the payload parsed.</summary>
    public bool Success => Error == ParseError.None;

    /// <summary>A short reason for logs and quarantine records, e.g. <c>invalid JSON at byte 17</c>.</summary>
    public override string ToString() => Error switch
    {
        ParseError.None => "ok",
        ParseError.InvalidJson => $"invalid JSON at byte {BytePosition}",
        ParseError.RootNotObject => "root is not a JSON object",
        ParseError.MissingEntry => "no entry array",
        _ => Error.ToString(),
    };
}
