import Foundation
import LabelForgeCore
import Testing

@testable import LabelForgeVectors

@Suite struct NearDuplicatesTests {
    @Test func wordShinglesIgnoreHowWhitespaceIsWritten() {
        let shingling = Shingling.words(3)
        #expect(shingling.hashes(of: "a b c d").count == 2)
        #expect(shingling.hashes(of: "a  b\tc\nd") == shingling.hashes(of: "a b c d"))
        #expect(shingling.hashes(of: "a b c a b c").count == 3)  // abc, bca, cab
        #expect(shingling.hashes(of: "a b").count == 1)  // shorter than one shingle: the whole text
        #expect(shingling.hashes(of: "   ").isEmpty)
        #expect(Shingling.characters(2).hashes(of: "abcab").count == 3)  // ab, bc, ca
        #expect(Shingling.characters(2).hashes(of: "é") == Shingling.characters(5).hashes(of: "é"))
    }

    @Test func jaccardIsExact() {
        #expect(NearDuplicates.jaccard([1, 2, 3, 4], [3, 4, 5, 6]) == 2.0 / 6.0)
        #expect(NearDuplicates.jaccard([1], [1]) == 1)
        #expect(NearDuplicates.jaccard([1], [2]) == 0)
    }

    /// Golden values from datasketch 2.0 (`datasketch.lsh._optimal_param`), printed by:
    /// `python -c "from datasketch.lsh import _optimal_param as o; print(o(0.8,128,0.5,0.5), …)"`
    @Test func bandsAndRowsMatchDatasketch() {
        let cases: [(Double, Int, Double, Double, Int, Int)] = [
            (0.8, 128, 0.5, 0.5, 9, 13), (0.5, 128, 0.5, 0.5, 25, 5), (0.9, 256, 0.5, 0.5, 9, 28),
            (0.8, 128, 0.1, 0.9, 14, 9), (0.7, 64, 0.5, 0.5, 8, 8),
        ]
        for (threshold, permutations, fp, fn, bands, rows) in cases {
            let chosen = NearDuplicates.MinHashParameters.optimal(
                threshold: threshold, permutations: permutations, fpWeight: fp, fnWeight: fn)
            #expect(
                chosen.bands == bands && chosen.rows == rows, "threshold \(threshold), \(permutations) permutations")
        }
    }

    /// Documents of random words, some of them edited copies of earlier ones (1–8% of words changed).
    static func corpus(count: Int, seed: UInt64) -> (texts: [String], planted: Int) {
        var random = SplitMix64(seed: seed)
        func word() -> String { "w\(random.next() % 5000)" }
        var texts: [String] = []
        var planted = 0
        for _ in 0..<count {
            if texts.count > 10, random.next() % 4 == 0 {
                var words = texts[Int(random.next() % UInt64(texts.count))].split(separator: " ").map(String.init)
                let edits = max(1, words.count * Int(1 + random.next() % 8) / 100)
                for _ in 0..<edits { words[Int(random.next() % UInt64(words.count))] = word() }
                texts.append(words.joined(separator: " "))
                planted += 1
            } else {
                texts.append((0..<(60 + Int(random.next() % 60))).map { _ in word() }.joined(separator: " "))
            }
        }
        return (texts, planted)
    }

    /// Every pair at or above the threshold, by comparing all pairs.
    static func bruteForce(_ sets: [[UInt64]], threshold: Double) -> Set<[Int]> {
        var pairs = Set<[Int]>()
        for i in 0..<sets.count {
            for j in (i + 1)..<sets.count where NearDuplicates.jaccard(sets[i], sets[j]) >= threshold {
                pairs.insert([i, j])
            }
        }
        return pairs
    }

    @Test func minhashFindsThePlantedDuplicatesWithoutFalsePairs() {
        let (texts, planted) = Self.corpus(count: 600, seed: 7)
        let sets = texts.map { Shingling.words(3).hashes(of: $0) }
        let parameters = NearDuplicates.MinHashParameters.optimal(threshold: 0.8, permutations: 128)
        let result = NearDuplicates.minhash(sets, parameters: parameters)
        let truth = Self.bruteForce(sets, threshold: 0.8)
        let found = Set(result.pairs.map { [$0.first, $0.second] })
        #expect(planted > 100)
        #expect(truth.count > 50)
        #expect(found.isSubset(of: truth))  // precision 1: every pair is verified
        #expect(Double(found.count) >= 0.95 * Double(truth.count), "found \(found.count) of \(truth.count)")
        for pair in result.pairs {
            #expect(pair.similarity == NearDuplicates.jaccard(sets[pair.first], sets[pair.second]))
        }
        // The kept member is the first of its component.
        for (index, kept) in result.kept.enumerated() {
            #expect(kept <= index)
            #expect(result.kept[kept] == kept)
        }
    }

    @Test func theKeptMemberDoesNotDependOnChunkingOrThreads() {
        let (texts, _) = Self.corpus(count: 400, seed: 11)
        let sets = NearDuplicates.shingleSets(texts, shingling: .words(3), chunk: 7)
        #expect(sets == texts.map { Shingling.words(3).hashes(of: $0) })
        let parameters = NearDuplicates.MinHashParameters.optimal(threshold: 0.8, permutations: 128)
        let reference = NearDuplicates.minhash(sets, parameters: parameters, chunk: 1)
        #expect(!reference.clusters.isEmpty)
        for chunk in [3, 64, 100_000] {
            #expect(NearDuplicates.minhash(sets, parameters: parameters, chunk: chunk) == reference)
        }
        // In another order, the same texts form the same clusters (kept = the first in the new order).
        let reversed = NearDuplicates.minhash(sets.reversed(), parameters: parameters)
        let n = sets.count
        let forward = Set(reference.clusters.map { Set($0) })
        let backward = Set(reversed.clusters.map { Set($0.map { n - 1 - $0 }) })
        #expect(forward == backward)
    }

    @Test func identicalTextsAreOneClusterWithoutQuadraticPairs() {
        let texts = Array(repeating: "the same boilerplate footer text appears here", count: 2000) + ["something else"]
        let sets = texts.map { Shingling.words(3).hashes(of: $0) }
        let result = NearDuplicates.minhash(sets, parameters: .optimal(threshold: 0.8, permutations: 64))
        #expect(result.clusters.count == 1)
        #expect(result.clusters[0].count == 2000)
        #expect(result.kept.last == 2000)
        #expect(result.candidates == 0)
        #expect(result.pairs.count == 1999)
    }

    @Test func cosineClustersJoinPairsAboveTheThreshold() {
        let vectors = VectorMatrix([
            [1, 0, 0], [0.99, 0.1, 0], [0, 1, 0], [0, 0, 1], [0.98, 0.15, 0.05], [0, 0, 2],
        ])
        for block in [1, 2, 4, 64] {
            let result = NearDuplicates.cosine(vectors, threshold: 0.95, block: block)
            #expect(result.kept == [0, 0, 2, 3, 0, 3], "block \(block)")
            #expect(result.pairs.map { [$0.first, $0.second] } == [[0, 1], [0, 4], [1, 4], [3, 5]])
        }
    }
}
