import LabelForgeCore
import Testing

@Suite struct RowIDTests {
    let records: [[String: JSONValue]] = [
        ["text": "alpha", "n": 1], ["text": "beta", "n": 2], ["text": "gamma", "n": 3], ["text": "alpha", "n": 1],
    ]

    @Test("row IDs do not depend on row order")
    func orderIndependent() {
        var forward = RowIDAssigner(idField: nil)
        let ids = records.map { forward.assign($0) }
        var backward = RowIDAssigner(idField: nil)
        let reversedIDs = Array(records.reversed().map { backward.assign($0) }.reversed())
        // The unique records keep their IDs in any order.
        #expect(ids[1] == reversedIDs[1])
        #expect(ids[2] == reversedIDs[2])
        #expect(Set(ids) == Set(reversedIDs))
    }

    @Test("identical records get #2, #3 in input order")
    func duplicates() {
        var assigner = RowIDAssigner(idField: nil)
        let ids = records.map { assigner.assign($0) }
        #expect(ids[3] == ids[0] + "#2")
        #expect(ids[0].count == 32)
    }

    @Test("the id column wins when present")
    func idColumn() {
        var assigner = RowIDAssigner(idField: "id")
        #expect(assigner.assign(["id": "r7", "text": "x"]) == "r7")
        #expect(assigner.assign(["id": 12, "text": "y"]) == "12")
        #expect(assigner.assign(["id": "r7", "text": "z"]) == "r7#2")
    }

    @Test("a record's ID is its content hash, whatever the key order")
    func contentHash() throws {
        let a = RowIDAssigner.baseID(for: try JSONValue.parse(#"{"a":1,"b":"x"}"#).objectValue!, idField: nil)
        let b = RowIDAssigner.baseID(for: try JSONValue.parse(#"{"b":"x","a":1}"#).objectValue!, idField: nil)
        #expect(a == b)
        #expect(a == String(ContentHash.hex(.object(["a": 1, "b": "x"])).prefix(32)))
    }
}

@Suite struct SeedTests {
    // Golden values computed with Python: int(sha256(f"{seed}|{stage}|{row}|{i}").hexdigest()[:8], 16).
    @Test("seed derivation matches golden values", arguments: [
        (UInt64(42), "sentiment", "r0001", 0, UInt32(3_341_800_422)),
        (UInt64(20_261_125), "attributes", "abc#2", 3, UInt32(1_301_523_390)),
        (UInt64(0), "s", "", 0, UInt32(1_919_195_331)),
    ])
    func golden(runSeed: UInt64, stage: String, row: String, sample: Int, expected: UInt32) {
        #expect(Seed.derive(runSeed: runSeed, stageID: stage, rowID: row, sampleIndex: sample) == expected)
    }

    @Test("every input changes the seed")
    func sensitivity() {
        let base = Seed.derive(runSeed: 1, stageID: "s", rowID: "r", sampleIndex: 0)
        #expect(Seed.derive(runSeed: 2, stageID: "s", rowID: "r", sampleIndex: 0) != base)
        #expect(Seed.derive(runSeed: 1, stageID: "t", rowID: "r", sampleIndex: 0) != base)
        #expect(Seed.derive(runSeed: 1, stageID: "s", rowID: "q", sampleIndex: 0) != base)
        #expect(Seed.derive(runSeed: 1, stageID: "s", rowID: "r", sampleIndex: 1) != base)
    }
}

@Suite struct RowIDRepeatsTests {
    @Test("with a first pass's record of repeats, IDs are numbered exactly as without it")
    func sameIDs() {
        let records: [[String: JSONValue]] = (0..<500).map { i in
            // Every 7th record repeats an earlier text; ids repeat for every 11th.
            ["text": .string("row \(i % 7 == 0 ? 3 : i)"), "id": .string("id\(i % 11 == 0 ? 5 : i)")]
        }
        for idField in [nil, "id"] as [String?] {
            var pass = RowIDRepeats()
            for record in records { pass.add(RowIDAssigner.baseID(for: record, idField: idField)) }
            var plain = RowIDAssigner(idField: idField)
            var lean = RowIDAssigner(idField: idField, repeats: pass.finished())
            let expected = records.map { plain.assign($0) }
            #expect(records.map { lean.assign($0) } == expected)
            #expect(expected.contains { $0.hasSuffix("#2") })
        }
    }
}
