using System.Text.Json;
using FastIngest.Dispatch;
using FastIngest.Internal;
using FastIngest.Parsing;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Dispatch;

/// <summary>The payload a bot gets for each event: Meta's envelope around exactly that one event.</summary>
public sealed class ForwardPayloadWriterTests
{
    public static TheoryData<string> Payloads()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(RepoPaths.Fixtures, "*.json"))
            data.Add(f);
        if (RepoPaths.Corpus is not null)
        {
            foreach (var f in Directory.GetFiles(RepoPaths.Corpus, "*.json"))
                data.Add(f);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Payloads))]
    public void Each_event_becomes_a_one_line_webhook_that_parses_back_to_that_event(string file)
    {
        var body = File.ReadAllBytes(file);
        using var events = new EventBuffer();
        Assert.True(WebhookParser.Parse(body, events).Success);
        using var writer = new PooledBufferWriter();
        using var again = new EventBuffer();

        for (var i = 0; i < events.Count; i++)
        {
            var e = events[i];
            writer.Reset();
            ForwardPayloadWriter.Write(body, events, i, writer);
            var forwarded = writer.WrittenSpan.ToArray();

            Assert.DoesNotContain((byte)'\n', forwarded);
            Assert.True(System.Text.Ascii.IsValid(forwarded), "forwards are ASCII-only: non-ASCII goes as \\uXXXX");
            // Both kinds of verifier compute the same HMAC over it: the raw bytes, and whatsapp-api-js's escapeUnicode(body).
            Assert.Equal(FastIngest.Ingest.WebhookSignature.Sign("k", forwarded), FastIngest.Ingest.WebhookSignature.Sign("k", System.Text.Encoding.UTF8.GetBytes(JsEscapeUnicode(System.Text.Encoding.UTF8.GetString(forwarded)))));
            using (JsonDocument.Parse(forwarded)) { } // well-formed
            Assert.True(WebhookParser.Parse(forwarded, again).Success);
            var f = Assert.Single(again.Events.ToArray());
            Assert.Equal(e.Kind, f.Kind);
            Assert.Equal(e.Id.GetString(body), f.Id.GetString(forwarded));
            Assert.Equal(e.Status.GetString(body), f.Status.GetString(forwarded));
            Assert.Equal(e.Type.GetString(body), f.Type.GetString(forwarded));
            Assert.Equal(e.Field.GetString(body), f.Field.GetString(forwarded));
            Assert.Equal(e.EntryId.GetString(body), f.EntryId.GetString(forwarded));
            Assert.Equal(e.EntryTime.GetString(body), f.EntryTime.GetString(forwarded));
            Assert.Equal(e.PhoneNumberId.GetString(body), f.PhoneNumberId.GetString(forwarded));
            Assert.Equal(e.DisplayPhoneNumber.GetString(body), f.DisplayPhoneNumber.GetString(forwarded));
            Assert.Equal(e.TextBody.GetString(body), f.TextBody.GetString(forwarded));
            Assert.Equal(e.ValueErrors.IsPresent, f.ValueErrors.IsPresent);
            Assert.Equal(events.Object.GetString(body) ?? "whatsapp_business_account", again.Object.GetString(forwarded));
            if (e.Kind == WebhookEventKind.Change)
            {
                Assert.Equal(Compact(e.Value.Raw(body)), Compact(f.Value.Raw(forwarded)));
            }
            else
            {
                Assert.Equal(e.MatchedContact >= 0 ? 1 : 0, f.ContactsCount);
                if (e.MatchedContact >= 0)
                    Assert.Equal(events.Contacts[e.MatchedContact].WaId.GetString(body), again.Contacts[0].WaId.GetString(forwarded));
                Assert.Equal(Compact(e.Item.Raw(body)), Compact(f.Item.Raw(forwarded)));
            }
        }
    }

    /// <summary>whatsapp-api-js's escapeUnicode, as JavaScript runs it: each UTF-16 unit over 0x7F as \\u and 4 lowercase hex digits.</summary>
    internal static string JsEscapeUnicode(string s)
        => string.Concat(s.Select(c => c > 0x7F ? $"\\u{(int)c:x4}" : c.ToString()));

    [Theory]
    [InlineData("äöå", "\\u00e4\\u00f6\\u00e5")]
    [InlineData("ok 😀!", "ok \\ud83d\\ude00!")]
    public void Escaping_is_Metas_lowercase_unicode_form(string text, string escaped)
    {
        var utf8 = System.Text.Encoding.UTF8.GetBytes(text);
        var dest = new byte[FastIngest.Internal.UnicodeEscape.MaxEscapedLength(utf8.Length)];
        Assert.Equal(escaped, System.Text.Encoding.ASCII.GetString(dest, 0, FastIngest.Internal.UnicodeEscape.Escape(utf8, dest)));
        Assert.Equal(escaped, JsEscapeUnicode(text));
    }

    private static string ForwardedContacts(byte[] body, int index)
    {
        using var events = new EventBuffer();
        Assert.True(WebhookParser.Parse(body, events).Success);
        using var writer = new PooledBufferWriter();
        ForwardPayloadWriter.Write(body, events, index, writer);
        using var doc = JsonDocument.Parse(writer.WrittenSpan.ToArray());
        var value = doc.RootElement.GetProperty("entry")[0].GetProperty("changes")[0].GetProperty("value");
        return value.TryGetProperty("contacts", out var contacts) ? JsonSerializer.Serialize(contacts) : "";
    }

    [Fact]
    public void A_group_status_keeps_its_participant_contact()
    {
        // pywa's message_status.group: the contact is the participant (recipient_participant_id), not recipient_id.
        var body = System.Text.Encoding.UTF8.GetBytes("""{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"2"},"contacts":[{"profile":{"name":"P"},"wa_id":"16505550001","user_id":"US.1"}],"statuses":[{"id":"wamid.G","status":"read","timestamp":"1698266945","recipient_id":"group-abc","recipient_type":"group","recipient_participant_id":"16505550001"}]},"field":"messages"}]}]}""");
        Assert.Contains("16505550001", ForwardedContacts(body, 0), StringComparison.Ordinal);
        if (RepoPaths.Corpus is not null && File.Exists(Path.Combine(RepoPaths.Corpus, "pywa__message_status.group.json")))
            Assert.Contains("US.123456", ForwardedContacts(File.ReadAllBytes(Path.Combine(RepoPaths.Corpus, "pywa__message_status.group.json")), 0), StringComparison.Ordinal);
    }

    [Fact]
    public void A_single_contact_that_matches_no_event_is_kept()
    {
        var body = System.Text.Encoding.UTF8.GetBytes("""{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"2"},"contacts":[{"profile":{"name":"Who"},"user_id":"US.9"}],"statuses":[{"id":"wamid.S","status":"sent","timestamp":"1","recipient_id":"16505550009"}]},"field":"messages"}]}]}""");
        Assert.Contains("US.9", ForwardedContacts(body, 0), StringComparison.Ordinal);
    }

    [Fact]
    public void With_many_contacts_each_message_gets_its_own()
    {
        // Past 8 contacts the match goes through a hash table: it must pick the same contact a scan would.
        const int n = 300;
        var contacts = string.Join(",", Enumerable.Range(0, n).Select(i => $$$"""{"profile":{"name":"C{{{i}}}"},"wa_id":"1650555{{{i:D4}}}"}"""));
        var messages = string.Join(",", Enumerable.Range(0, n).Reverse().Select(i => $$$"""{"from":"1650555{{{i:D4}}}","id":"wamid.M{{{i}}}","timestamp":"1","type":"text","text":{"body":"x"}}"""));
        var body = System.Text.Encoding.UTF8.GetBytes($$$"""{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"2"},"contacts":[{{{contacts}}}],"messages":[{{{messages}}}]},"field":"messages"}]}]}""");
        using var events = new EventBuffer();
        Assert.True(WebhookParser.Parse(body, events).Success);
        for (var k = 0; k < n; k++)
            Assert.Equal(events[k].From.GetString(body), events.Contacts[events[k].MatchedContact].WaId.GetString(body));
        Assert.Contains("\"C7\"", ForwardedContacts(body, n - 1 - 7), StringComparison.Ordinal);
    }

    private static byte[] StatusBatch(int count)
    {
        var items = string.Join(",", Enumerable.Range(0, count).Select(i => $$$"""{"id":"wamid.S{{{i:D6}}}","status":"read","timestamp":"1","recipient_id":"1650{{{i:D7}}}"}"""));
        return System.Text.Encoding.UTF8.GetBytes($$$"""{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"2"},"statuses":[{{{items}}}]},"field":"messages"}]}]}""");
    }

    /// <summary>Bytes of JSON read to build every forward of a batch of <paramref name="count"/> statuses.</summary>
    private static long ScannedFor(int count)
    {
        var body = StatusBatch(count);
        using var events = new EventBuffer();
        Assert.True(WebhookParser.Parse(body, events).Success);
        using var writer = new PooledBufferWriter();
        var layout = new ValueLayout();
        for (var i = 0; i < events.Count; i++)
        {
            writer.Reset();
            ForwardPayloadWriter.Write(body, events, i, writer, layout);
        }
        return layout.BytesScanned;
    }

    [Fact]
    public void Building_the_forwards_of_N_events_reads_the_payload_once_not_N_times()
    {
        // Quadratic on the old writer: 100,000 statuses in one signed POST forwarded nothing in 240 s.
        var small = ScannedFor(1_000);
        var large = ScannedFor(4_000);
        Assert.InRange((double)large / small, 3.5, 4.5);
        Assert.True(large < StatusBatch(4_000).Length, $"{large} bytes read for a {StatusBatch(4_000).Length}-byte payload");
    }

    private static string Compact(ReadOnlySpan<byte> json)
    {
        using var doc = JsonDocument.Parse(json.ToArray());
        return JsonSerializer.Serialize(doc.RootElement);
    }
}
