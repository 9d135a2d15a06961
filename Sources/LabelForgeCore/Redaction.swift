/// Keeps credentials out of messages that quote what a server said: the key LabelForge sent,
/// bearer tokens, and OpenAI-style `sk-…` keys become `[redacted]`.
public enum Redaction {
    /// `text` with every occurrence of `secrets` and every bearer token or `sk-` key replaced.
    public static func redact(_ text: String, secrets: [String] = []) -> String {
        var text = text
        for secret in secrets where secret.count >= 4 {
            text = text.replacingOccurrences(of: secret, with: "[redacted]")
        }
        text = text.replacing(/(?i)(bearer)\s+[A-Za-z0-9._~+\/=-]+/) { "\($0.output.1) [redacted]" }
        return text.replacing(/\bsk-[A-Za-z0-9_-]{6,}/, with: "[redacted]")
    }
}
