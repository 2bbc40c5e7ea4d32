using System.Globalization;
using System.Text;
using System.Text.Json;
using FastIngest.Parsing;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Parsing;

/// <summary>
/// The 118 real payloads of ../shared/corpus/meta-webhooks: each must yield exactly the events and fields that its
/// SOURCES.md entry lists. Read from the shared folder, never copied into the project.
/// </summary>
public sealed class CorpusTests
{
    private static readonly Lazy<IReadOnlyDictionary<string, ExpectedPayload>> s_expected =
        new(() => RepoPaths.Corpus is null ? new Dictionary<string, ExpectedPayload>() : CorpusExpectations.Load(RepoPaths.Corpus));

    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        if (RepoPaths.Corpus is null)
        {
            data.Add("(corpus absent)");
            return data;
        }
        foreach (var f in s_expected.Value.Keys.Order(StringComparer.Ordinal))
            data.Add(f);
        return data;
    }

    [Fact]
    public void Corpus_when_present_holds_118_payloads_each_with_expectations()
    {
        if (RepoPaths.Corpus is null)
            return; // a clone without ../shared tests the parser on its own fixtures only
        var jsonFiles = Directory.GetFiles(RepoPaths.Corpus, "*.json").Select(Path.GetFileName).ToHashSet();
        Assert.Equal(118, jsonFiles.Count);
        Assert.Equal(jsonFiles.Order(), s_expected.Value.Keys.Order());
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Payload_yields_the_events_and_fields_SOURCES_lists(string file)
    {
        if (RepoPaths.Corpus is null)
            return;
        var expected = s_expected.Value[file];
        var body = File.ReadAllBytes(Path.Combine(RepoPaths.Corpus, file));
        using var events = new EventBuffer();

        var result = WebhookParser.Parse(body, events);

        Assert.True(result.Success, $"{file}: {result}");
        Assert.Equal("whatsapp_business_account", expected.Object);
        AssertPayload(expected, body, events);
    }

    internal static void AssertPayload(ExpectedPayload expected, byte[] body, EventBuffer events)
    {
        var expectedEventCount = expected.Changes.Sum(c => Math.Max(1, c.Messages.Count + c.Statuses.Count));
        Assert.Equal(expectedEventCount, events.Count);

        for (var ei = 0; ei < expected.Entries.Count; ei++)
        {
            var entry = expected.Entries[ei];
            foreach (ref readonly var e in events.Events)
            {
                if (e.EntryIndex != ei)
                    continue;
                Assert.Equal(entry[$"entry[{ei}].id"], e.EntryId.GetString(body));
                Assert.Equal(entry["time"], e.EntryTime.GetString(body));
            }
        }

        foreach (var change in expected.Changes)
        {
            var mine = events.Events.ToArray().Where(e => e.EntryIndex == change.Entry && e.ChangeIndex == change.Index).ToList();
            Assert.NotEmpty(mine);
            foreach (var e in mine)
            {
                Assert.Equal(change.Line["field"], e.Field.GetString(body));
                Assert.Equal(change.Line["phone_number_id"], e.PhoneNumberId.GetString(body));
                Assert.Equal(change.Line["display_phone_number"], e.DisplayPhoneNumber.GetString(body));
            }

            var contacts = events.Contacts.Slice(mine[0].ContactsStart, mine[0].ContactsCount).ToArray();
            Assert.Equal(change.Contacts.Count, contacts.Length);
            for (var i = 0; i < contacts.Length; i++)
            {
                Assert.Equal(change.Contacts[i]["wa_id"], contacts[i].WaId.GetString(body));
                Assert.Equal(change.Contacts[i]["name"], contacts[i].Name.GetString(body));
                Assert.Equal(change.Contacts[i]["user_id"], contacts[i].UserId.GetString(body));
            }

            var messages = mine.Where(e => e.Kind == WebhookEventKind.Message).ToList();
            var statuses = mine.Where(e => e.Kind == WebhookEventKind.Status).ToList();
            Assert.Equal(change.Messages.Count, messages.Count);
            Assert.Equal(change.Statuses.Count, statuses.Count);
            if (change.Messages.Count + change.Statuses.Count == 0)
                Assert.Equal(WebhookEventKind.Change, Assert.Single(mine).Kind);

            for (var i = 0; i < messages.Count; i++)
                AssertMessage(change.Messages[i], messages[i], body);
            for (var i = 0; i < statuses.Count; i++)
                AssertStatus(change.Statuses[i], statuses[i], body);
            foreach (var v in change.ValueLines)
                AssertValue(v, mine[0], body);
        }
    }

    private static void AssertMessage(ExpectedLine x, WebhookEvent e, byte[] body)
    {
        Assert.Equal(x["id"], e.Id.GetString(body));
        Assert.Equal(x["from"], e.From.GetString(body));
        Assert.Equal(x["timestamp"], e.Timestamp.GetString(body));
        Assert.Equal(x["type"] ?? "None", TypeOf(e, body));

        if (x.Has("context.id"))
        {
            Assert.True(e.Context.IsPresent);
            Assert.Equal(x["context.id"], e.ContextId.GetString(body));
        }
        else
        {
            Assert.False(e.ContextId.IsPresent);
        }
        Assert.Equal(x.Flags.Contains("forwarded"), e.Forwarded);
        Assert.Equal(x.Flags.Contains("frequently_forwarded"), e.FrequentlyForwarded);
        Assert.Equal(x.Flags.Contains("referral"), e.Referral.IsPresent);
        if (x.Has("text.len"))
            Assert.Equal(int.Parse(x["text.len"]!, CultureInfo.InvariantCulture), e.TextBody.GetString(body)!.EnumerateRunes().Count());
        if (x.Has("reaction.message_id"))
        {
            Assert.Equal(x["reaction.message_id"], e.ReactionMessageId.GetString(body));
            Assert.Equal(x["emoji"], e.ReactionEmoji.GetString(body));
        }
        if (x.Has("errors"))
            Assert.Equal(x["errors"], Codes(e.Errors, body));
    }

    private static void AssertStatus(ExpectedLine x, WebhookEvent e, byte[] body)
    {
        Assert.Equal(x["id"], e.Id.GetString(body));
        Assert.Equal(x["status"], e.Status.GetString(body));
        Assert.Equal(x["recipient_id"], e.RecipientId.GetString(body));
        Assert.Equal(x["timestamp"], e.Timestamp.GetString(body));
        if (x.Has("recipient_type"))
            Assert.Equal(x["recipient_type"], e.RecipientType.GetString(body));
        Assert.Equal(x["conversation.id"], e.ConversationId.GetString(body));
        Assert.Equal(x["origin"], e.ConversationOrigin.GetString(body));
        var pricing = e.PricingModel.IsPresent || e.PricingCategory.IsPresent
            ? $"{e.PricingModel.GetString(body)}/{e.PricingCategory.GetString(body)}"
            : null;
        Assert.Equal(x["pricing"], pricing);
        Assert.Equal(x.Flags.Contains("biz_opaque_callback_data"), e.BizOpaqueCallbackData.IsPresent);
        if (x.Has("errors"))
            Assert.Equal(x["errors"], Codes(e.Errors, body));
        else
            Assert.False(e.Errors.IsPresent);
    }

    private static void AssertValue(ExpectedLine x, WebhookEvent e, byte[] body)
    {
        if (x.Has("value.errors"))
            Assert.Equal(x["value.errors"], Codes(e.ValueErrors, body));
        if (!x.Has("keys"))
            return;

        // The value segment must be exactly the value object: an independent reader agrees on its keys.
        using var doc = JsonDocument.Parse(e.Value.Raw(body).ToArray());
        var keys = doc.RootElement.EnumerateObject().Select(p => p.Name).Where(k => k is not "messaging_product" and not "metadata" and not "contacts" and not "errors").ToList();
        Assert.Equal(x["keys"], "[" + string.Join(", ", keys.Select(k => $"'{k}'")) + "]");
        Assert.Equal(x["event"], e.ValueEvent.GetString(body));
        foreach (var key in new[] { "message_template_id", "message_template_name", "new_category", "new_quality_score" })
        {
            if (x.Has(key))
                Assert.Equal(x[key], doc.RootElement.GetProperty(key).ToString());
        }
    }

    private static string TypeOf(WebhookEvent e, byte[] body)
    {
        var type = e.Type.GetString(body);
        if (type is null)
            return "None";
        if (type == "interactive")
            return "interactive/" + (e.SubType.GetString(body) ?? "None");
        return e.SubType.IsPresent ? $"{type}/{e.SubType.GetString(body)}" : type;
    }

    private static string? Codes(JsonSegment errors, byte[] body)
    {
        if (!errors.IsPresent)
            return null;
        using var doc = JsonDocument.Parse(errors.Raw(body).ToArray());
        return "[" + string.Join(", ", doc.RootElement.EnumerateArray().Select(err => err.GetProperty("code").GetRawText())) + "]";
    }
}
