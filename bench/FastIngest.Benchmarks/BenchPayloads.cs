using System.Globalization;
using System.Text;

namespace FastIngest.Benchmarks;

/// <summary>Meta-shaped payloads of the sizes the targets name.</summary>
public static class BenchPayloads
{
    public const string Secret = "bench-app-secret";

    /// <summary>One text message, padded to about <paramref name="size"/> bytes; the wamid carries <paramref name="n"/>.</summary>
    public static byte[] TextMessage(long n, int size = 1024)
    {
        var head = "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290129340398\",\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"106540352242922\"},\"contacts\":[{\"profile\":{\"name\":\"Sheena Nelson\"},\"wa_id\":\"16505551234\"}],\"messages\":[{\"from\":\"16505551234\",\"id\":\"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQz"
            + n.ToString("D12", CultureInfo.InvariantCulture)
            + "\",\"timestamp\":\"1749416383\",\"type\":\"text\",\"text\":{\"body\":\"";
        const string tail = "\"}}]},\"field\":\"messages\"}]}]}";
        var pad = Math.Max(0, size - head.Length - tail.Length);
        return Encoding.UTF8.GetBytes(head + new string('x', pad) + tail);
    }

    /// <summary><paramref name="count"/> statuses (sent, delivered, read rotating, with conversation and pricing) in one payload.</summary>
    public static byte[] StatusBatch(int count, long n = 0)
    {
        var sb = new StringBuilder("{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290129340398\",\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"106540352242922\"},\"statuses\":[");
        string[] states = ["sent", "delivered", "read"];
        for (var i = 0; i < count; i++)
        {
            if (i > 0)
                sb.Append(',');
            sb.Append(CultureInfo.InvariantCulture, $"{{\"id\":\"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQz{n:D8}{i:D5}\",\"status\":\"{states[i % 3]}\",\"timestamp\":\"17494164{i % 100:D2}\",\"recipient_id\":\"1650555{i:D4}\",\"conversation\":{{\"id\":\"CONVERSATION_ID_{i}\",\"origin\":{{\"type\":\"marketing\"}}}},\"pricing\":{{\"billable\":true,\"pricing_model\":\"CBP\",\"category\":\"marketing\"}}}}");
        }
        sb.Append("]},\"field\":\"messages\"}]}]}");
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    /// <summary>A payload of about <paramref name="bytes"/> bytes: status batches of 20 in as many changes as it takes.</summary>
    public static byte[] Large(int bytes)
    {
        var one = StatusBatch(20);
        var count = Math.Max(20, bytes / (one.Length / 20));
        return StatusBatch(count);
    }
}
