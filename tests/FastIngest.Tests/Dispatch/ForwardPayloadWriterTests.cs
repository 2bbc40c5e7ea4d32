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

    private static string Compact(ReadOnlySpan<byte> json)
    {
        using var doc = JsonDocument.Parse(json.ToArray());
        return JsonSerializer.Serialize(doc.RootElement);
    }
}
