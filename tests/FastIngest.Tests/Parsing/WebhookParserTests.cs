using System.Text;
using FastIngest.Parsing;
using FastIngest.Tests.Support;

namespace FastIngest.Tests.Parsing;

/// <summary>The parser on the project's own fixtures (every documented type) and on malformed input.</summary>
public sealed class WebhookParserTests
{
    private static (byte[] Body, EventBuffer Events) ParseFixture(string name)
    {
        var body = File.ReadAllBytes(Path.Combine(RepoPaths.Fixtures, name));
        var events = new EventBuffer();
        var result = WebhookParser.Parse(body, events);
        Assert.True(result.Success, result.ToString());
        return (body, events);
    }

    [Fact]
    public void Every_documented_message_type_parses_across_two_entries()
    {
        var (body, events) = ParseFixture("all-message-types.json");
        using var _ = events;
        var all = events.Events.ToArray();
        Assert.Equal(20, all.Length);
        Assert.All(all, e => Assert.Equal(WebhookEventKind.Message, e.Kind));

        string?[] types = ["text", "image", "audio", "video", "document", "sticker", "location", "contacts", "interactive", "interactive", "interactive", "button", "reaction", "order", "system", "text", "text", "text", "unsupported", "text"];
        Assert.Equal(types, all.Select(e => e.Type.GetString(body)));
        Assert.Equal(["button_reply", "list_reply", "nfm_reply"], all[8..11].Select(e => e.SubType.GetString(body)));
        Assert.Equal("user_changed_number", all[14].SubType.GetString(body));
        Assert.Equal("poll", all[18].SubType.GetString(body));
        Assert.Equal("[131051]", "[" + System.Text.Json.JsonDocument.Parse(all[18].Errors.Raw(body).ToArray()).RootElement[0].GetProperty("code").GetRawText() + "]");

        Assert.Equal("hi there", all[0].TextBody.GetString(body));
        Assert.Equal("wamid.asked", all[8].ContextId.GetString(body));
        Assert.Equal("wamid.template", all[11].ContextId.GetString(body));
        Assert.Equal("wamid.text", all[12].ReactionMessageId.GetString(body));
        Assert.Equal("👍", all[12].ReactionEmoji.GetString(body));
        Assert.True(all[15].Referral.IsPresent);
        Assert.Equal("wamid.question", all[16].ContextId.GetString(body));
        Assert.False(all[16].Forwarded);
        Assert.True(all[17].Forwarded);
        Assert.True(all[17].FrequentlyForwarded);
        Assert.False(all[17].ContextId.IsPresent);

        // Envelope of each event, per entry.
        Assert.All(all[..19], e =>
        {
            Assert.Equal("WABA-1", e.EntryId.GetString(body));
            Assert.Equal("PNID-1", e.PhoneNumberId.GetString(body));
            Assert.Equal("messages", e.Field.GetString(body));
            Assert.False(e.EntryTime.IsPresent);
        });
        Assert.Equal("WABA-2", all[19].EntryId.GetString(body));
        Assert.Equal(1, all[19].EntryIndex);
        Assert.Equal("1700000100", all[19].EntryTime.GetString(body));
        Assert.Equal("PNID-2", all[19].PhoneNumberId.GetString(body));
        Assert.Equal("messages", all[19].Field.GetString(body)); // field after value

        // Contacts matched by wa_id.
        Assert.Equal("Ana", events.Contacts[all[0].MatchedContact].Name.GetString(body));
        Assert.Equal("Ben", events.Contacts[all[8].MatchedContact].Name.GetString(body));
        Assert.Equal("US.222", events.Contacts[all[8].MatchedContact].UserId.GetString(body));
        Assert.Equal("Dee", events.Contacts[all[19].MatchedContact].Name.GetString(body));

        // Each item segment is exactly its message object.
        foreach (var e in all)
        {
            using var doc = System.Text.Json.JsonDocument.Parse(e.Item.Raw(body).ToArray());
            Assert.Equal(e.Id.GetString(body), doc.RootElement.GetProperty("id").GetString());
        }
    }

    [Fact]
    public void Statuses_keep_id_status_timestamp_recipient_errors_conversation_and_pricing()
    {
        var (body, events) = ParseFixture("statuses.json");
        using var _ = events;
        var all = events.Events.ToArray();
        Assert.Equal(5, all.Length);
        Assert.All(all, e => Assert.Equal(WebhookEventKind.Status, e.Kind));
        Assert.Equal(["sent", "delivered", "read", "failed", "read"], all.Select(e => e.Status.GetString(body)));
        Assert.Equal(["wamid.out1", "wamid.out1", "wamid.out1", "wamid.out2", "wamid.out3"], all.Select(e => e.Id.GetString(body)));
        Assert.Equal("1700000200", all[0].Timestamp.GetString(body));
        Assert.Equal("111", all[0].RecipientId.GetString(body));
        Assert.Equal("CONV1", all[0].ConversationId.GetString(body));
        Assert.Equal("marketing", all[0].ConversationOrigin.GetString(body));
        Assert.Equal("CBP", all[0].PricingModel.GetString(body));
        Assert.Equal("marketing", all[0].PricingCategory.GetString(body));
        Assert.Equal("campaign-7", all[0].BizOpaqueCallbackData.GetString(body));
        Assert.False(all[2].ConversationId.IsPresent);
        Assert.Contains("131047", Encoding.UTF8.GetString(all[3].Errors.Raw(body)), StringComparison.Ordinal);
        Assert.Equal("group", all[4].RecipientType.GetString(body));
        Assert.Equal(-1, all[0].MatchedContact);
    }

    [Fact]
    public void Template_account_unknown_field_and_errors_only_changes_are_one_event_each()
    {
        var (body, events) = ParseFixture("other-changes.json");
        using var _ = events;
        var all = events.Events.ToArray();
        Assert.Equal(4, all.Length);
        Assert.All(all, e => Assert.Equal(WebhookEventKind.Change, e.Kind));
        Assert.Equal(["message_template_status_update", "account_update", "some_field_from_the_future", "messages"], all.Select(e => e.Field.GetString(body)));
        Assert.Equal(["APPROVED", "VERIFIED_ACCOUNT", null, null], all.Select(e => e.ValueEvent.GetString(body)));
        Assert.Equal(JsonSegmentKind.Null, all[2].ValueEvent.Kind);
        Assert.Equal([0, 1, 2, 3], all.Select(e => e.ChangeIndex));
        Assert.Equal("1700000300", all[0].EntryTime.GetString(body));
        Assert.Contains("131000", Encoding.UTF8.GetString(all[3].ValueErrors.Raw(body)), StringComparison.Ordinal);
        Assert.Equal(all[0].Value, all[0].Item);
    }

    [Fact]
    public void Unicode_escapes_unknown_types_and_unknown_fields_pass_through()
    {
        var (body, events) = ParseFixture("unicode-and-unknown.json");
        using var _ = events;
        var all = events.Events.ToArray();
        Assert.Equal(2, all.Length);
        Assert.Equal("WABA-1", all[0].EntryId.GetString(body));
        Assert.Equal(JsonSegmentKind.EscapedString, all[0].Id.Kind);
        Assert.Equal("wamid.HBgL==", all[0].Id.GetString(body));
        Assert.Equal("Ünïcödé — 日本語 🎉 \"quoted\" \\ back", all[0].TextBody.GetString(body));
        Assert.Equal("שלום עולם", events.Contacts[all[0].MatchedContact].Name.GetString(body));
        Assert.Equal("hologram", all[1].Type.GetString(body));
        Assert.Contains("brand_new_field", Encoding.UTF8.GetString(all[1].Item.Raw(body)), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", ParseError.InvalidJson)]
    [InlineData("not json", ParseError.InvalidJson)]
    [InlineData("{\"object\":\"whatsapp_business_account\",\"entry\":[", ParseError.InvalidJson)]
    [InlineData("{\"entry\":[]} trailing", ParseError.InvalidJson)]
    [InlineData("{\"entry\":[]}{\"entry\":[]}", ParseError.InvalidJson)]
    [InlineData("[1,2,3]", ParseError.RootNotObject)]
    [InlineData("\"just a string\"", ParseError.RootNotObject)]
    [InlineData("{\"object\":\"whatsapp_business_account\"}", ParseError.MissingEntry)]
    [InlineData("{\"entry\":{}}", ParseError.MissingEntry)]
    public void Malformed_payloads_are_reported_not_thrown(string json, ParseError expected)
    {
        using var events = new EventBuffer();
        var result = WebhookParser.Parse(Encoding.UTF8.GetBytes(json), events);
        Assert.Equal(expected, result.Error);
        Assert.Equal(0, events.Count);
    }

    [Fact]
    public void Nesting_ten_thousand_deep_invalid_utf8_and_huge_strings_are_handled()
    {
        using var events = new EventBuffer();
        var deep = Encoding.UTF8.GetBytes("{\"entry\":[" + new string('[', 10_000) + new string(']', 10_000) + "]}");
        Assert.Equal(ParseError.InvalidJson, WebhookParser.Parse(deep, events).Error);

        var badUtf8 = Encoding.UTF8.GetBytes("{\"entry\":[{\"id\":\"AB\"}]}");
        badUtf8[16] = 0xFF;
        Assert.Equal(ParseError.InvalidJson, WebhookParser.Parse(badUtf8, events).Error);

        var hugeString = Encoding.UTF8.GetBytes("{\"entry\":[{\"id\":\"" + new string('x', 3_000_000) + "\",\"changes\":[]}]}");
        Assert.True(WebhookParser.Parse(hugeString, events).Success);
        Assert.Equal(0, events.Count);
    }

    [Fact]
    public void An_empty_entry_array_is_a_valid_payload_with_no_events()
    {
        using var events = new EventBuffer();
        Assert.True(WebhookParser.Parse("{\"object\":\"whatsapp_business_account\",\"entry\":[]}"u8, events).Success);
        Assert.Equal(0, events.Count);
    }

    [Fact]
    public void A_warm_parse_allocates_nothing()
    {
        var body = File.ReadAllBytes(Path.Combine(RepoPaths.Fixtures, "all-message-types.json"));
        using var events = new EventBuffer();
        WebhookParser.Parse(body, events);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
            WebhookParser.Parse(body, events);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
