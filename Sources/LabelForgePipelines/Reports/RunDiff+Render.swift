import Foundation
import LabelForgeCore
import LabelForgeKernel

extension RunDiff {
    /// The diff as JSON (`--format json`).
    public var json: JSONValue {
        func change(_ c: Change) -> JSONValue {
            ["path": .string(c.path), "a": c.a.map(JSONValue.string) ?? .null, "b": c.b.map(JSONValue.string) ?? .null]
        }
        func number(_ x: Double?) -> JSONValue { x.map(JSONValue.double) ?? .null }
        return [
            "a": .string(a), "b": .string(b), "outputs_differ": .bool(outputsDiffer),
            "config": .array(config.map(change)), "pins": .array(pins.map(change)),
            "stages": .array(
                stages.map { s in
                    [
                        "id": .string(s.id), "only_a": .int(Int64(s.onlyA)), "only_b": .int(Int64(s.onlyB)),
                        "changed": .int(Int64(s.changed)), "unchanged": .int(Int64(s.unchanged)),
                        "fields": .array(
                            s.fields.map { f in
                                [
                                    "name": .string(f.name), "kind": .string(f.kind), "n": .int(Int64(f.count)),
                                    "agreement": .double(f.agreement), "kappa": number(f.kappa),
                                    "confusion": .object(
                                        f.confusion.mapValues { .object($0.mapValues { .int(Int64($0)) }) }),
                                    "mean_delta": number(f.meanDelta), "pearson": number(f.pearson),
                                    "spearman": number(f.spearman),
                                ]
                            }),
                        "samples": .array(s.samples.map { ["row_id": .string($0.rowID), "a": $0.a, "b": $0.b] }),
                        "vectors": s.vectors.map { v in
                            [
                                "n": .int(Int64(v.count)), "identical": .int(Int64(v.identical)),
                                "mean_cosine": number(v.meanCosine), "min_cosine": number(v.minCosine),
                            ]
                        } ?? .null,
                    ]
                }),
            "gold": .array(
                gold.map { g in
                    [
                        "field": .string(g.field), "a": g.a?.json ?? .null, "b": g.b?.json ?? .null,
                        "b_minus_a": g.difference?.json ?? .null,
                        "labeled_examples": g.labeledExamples.map { ["a": .int(Int64($0.a)), "b": .int(Int64($0.b))] }
                            ?? .null,
                        "gain_per_labeled_example": g.gainPerExample.map { .double(Answers.rounded($0)) } ?? .null,
                    ]
                }),
        ]
    }

    /// The diff for people: `text` or `markdown`.
    public func rendered(markdown: Bool) -> String {
        var out: [String] = []
        let h = markdown ? "## " : ""
        let bullet = markdown ? "- " : "  "
        out.append((markdown ? "# " : "") + "diff \(a) → \(b)")
        out.append("")
        out.append(h + "config" + (config.isEmpty ? ": identical" : ""))
        for c in config { out.append(bullet + "\(c.path): \(c.a ?? "(absent)") → \(c.b ?? "(absent)")") }
        out.append(h + "pins" + (pins.isEmpty ? ": identical" : ""))
        for c in pins { out.append(bullet + "\(c.path): \(c.a ?? "(absent)") → \(c.b ?? "(absent)")") }
        for s in stages {
            out.append("")
            out.append(
                h
                    + "stage \(s.id): \(s.changed) changed, \(s.unchanged) unchanged, \(s.onlyA) only in a, \(s.onlyB) only in b"
            )
            for f in s.fields {
                if f.kind == "text" {
                    out.append(
                        bullet
                            + "\(f.name) (text, n=\(f.count)): identical in \(String(format: "%.1f%%", f.agreement * 100))"
                    )
                } else if f.kind == "numeric" {
                    out.append(
                        bullet + "\(f.name) (numeric, n=\(f.count)): mean delta \(Self.format(f.meanDelta)), "
                            + "pearson \(Self.format(f.pearson)), spearman \(Self.format(f.spearman))")
                } else {
                    out.append(
                        bullet + "\(f.name) (n=\(f.count)): agreement \(String(format: "%.1f%%", f.agreement * 100)), "
                            + "kappa \(Self.format(f.kappa))")
                    if f.agreement < 1 { out += confusionTable(f.confusion, markdown: markdown) }
                }
            }
            if let v = s.vectors {
                out.append(
                    bullet
                        + "vectors (n=\(v.count)): \(v.identical) identical, cosine mean \(Self.format(v.meanCosine)), "
                        + "min \(Self.format(v.minCosine))")
            }
            if !s.samples.isEmpty {
                out.append(bullet + "changed rows (first \(s.samples.count)):")
                for sample in s.samples {
                    out.append(bullet + "  \(sample.rowID): \(Self.values(sample.a)) → \(Self.values(sample.b))")
                }
            }
        }
        if !gold.isEmpty {
            out += ["", h + "against gold (95% intervals: seeded bootstrap)"]
            for g in gold {
                func score(_ s: SummaryRecord.Gold?) -> String {
                    s.map { "\(RunReport.percent($0.accuracy, $0.intervals?.accuracy)) (n=\($0.n))" } ?? "not scored"
                }
                out.append(bullet + "\(g.field) accuracy: a \(score(g.a)), b \(score(g.b))")
                if let d = g.difference { out.append(bullet + "  b − a: " + d.phrase) }
                if let gain = g.gainPerExample, let examples = g.labeledExamples {
                    out.append(
                        bullet
                            + String(
                                format: "  %+.3f points per labeled example (a learns from %d, b from %d)",
                                gain * 100, examples.a, examples.b))
                }
            }
        }
        return out.joined(separator: "\n") + "\n"
    }

    private func confusionTable(_ confusion: [String: [String: Int]], markdown: Bool) -> [String] {
        let rows = confusion.keys.sorted()
        let columns = Set(confusion.values.flatMap(\.keys)).sorted()
        let width = max(8, (rows + columns).map(\.count).max() ?? 8)
        func pad(_ s: String) -> String { s.padding(toLength: width, withPad: " ", startingAt: 0) }
        if markdown {
            var lines = [
                "", "| a \\ b | " + columns.joined(separator: " | ") + " |",
                "|---|" + columns.map { _ in "---|" }.joined(),
            ]
            for r in rows {
                lines.append(
                    "| \(r) | " + columns.map { String(confusion[r]?[$0] ?? 0) }.joined(separator: " | ") + " |")
            }
            return lines + [""]
        }
        var lines = ["    " + pad("a \\ b") + columns.map(pad).joined(separator: " ")]
        for r in rows {
            lines.append("    " + pad(r) + columns.map { pad(String(confusion[r]?[$0] ?? 0)) }.joined(separator: " "))
        }
        return lines
    }

    /// An output record without its `row_id`, as one line of canonical JSON.
    public static func values(_ record: JSONValue) -> String {
        guard case .object(var members) = record else { return record.textForm }
        members.removeValue(forKey: "row_id")
        return CanonicalJSON.string(.object(members))
    }

    static func format(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "n/a" }
}
