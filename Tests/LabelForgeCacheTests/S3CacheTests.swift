import Foundation
import LabelForgeCore
import LabelForgeTesting
import Logging
import Testing

@testable import LabelForgeCache

/// SigV4 and credentials on their own; the S3 cache against a real SeaweedFS server.
@Suite struct S3SigningTests {
    @Test("SigV4 reproduces AWS's documented example (GET /test.txt with a Range header)")
    func awsExample() {
        // docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html, "GET Object".
        let signer = S3Signer(
            credentials: S3Credentials(
                accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                source: "test"),
            region: "us-east-1")
        let headers = signer.sign(
            method: "GET", path: "/test.txt", query: [],
            headers: ["Host": "examplebucket.s3.amazonaws.com", "Range": "bytes=0-9"],
            payloadHash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            date: Date(timeIntervalSince1970: 1_369_353_600))  // 2013-05-24T00:00:00Z
        #expect(
            headers["authorization"]
                == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(headers["x-amz-date"] == "20130524T000000Z")
        #expect(headers["host"] == nil && headers["range"] == nil)
    }

    @Test(
        "credentials: the environment first, else the profile in the shared credentials file; none says where it looked"
    )
    func credentials() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lf-aws-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
        [default]
        aws_access_key_id = AKDEFAULT
        aws_secret_access_key = secret-default
        # a comment
        [profile team]
        aws_access_key_id=AKTEAM
        aws_secret_access_key=secret-team
        aws_session_token = token-team
        """.write(toFile: dir + "/credentials", atomically: true, encoding: .utf8)
        let file = ["AWS_SHARED_CREDENTIALS_FILE": dir + "/credentials"]
        let env = try S3Credentials.resolve(
            profile: nil,
            environment: file.merging(["AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "s"]) { a, _ in a })
        #expect(env.accessKeyID == "AKENV" && env.source == "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
        let fallback = try S3Credentials.resolve(profile: nil, environment: file)
        #expect(fallback.accessKeyID == "AKDEFAULT" && fallback.secretAccessKey == "secret-default")
        let team = try S3Credentials.resolve(
            profile: nil, environment: file.merging(["AWS_PROFILE": "team"]) { a, _ in a })
        #expect(team.accessKeyID == "AKTEAM" && team.sessionToken == "token-team")
        #expect(team.source.contains("profile 'team'"))
        // A named profile wins over the environment's keys.
        let named = try S3Credentials.resolve(
            profile: "team",
            environment: file.merging(["AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "s"]) { a, _ in a })
        #expect(named.accessKeyID == "AKTEAM")
        #expect {
            try S3Credentials.resolve(profile: "missing", environment: file)
        } throws: { error in
            let message = (error as? LabelForgeError)?.message ?? ""
            return message.contains("profile 'missing'") && message.contains(dir + "/credentials")
                && message.contains("AWS_ACCESS_KEY_ID")
        }
    }

    @Test("an object holds its entry with the SQLite cache's integrity hash; any change to it reads as a miss")
    func objectFormat() throws {
        let entry = S3CacheTests.entry("a", payload: Data([1, 2, 3, 4]))
        let bytes = S3Cache.encode(entry)
        let decoded = try #require(S3Cache.decode(bytes, key: entry.key))
        #expect(decoded.requestData == entry.requestData && decoded.response == entry.response)
        #expect(decoded.payload == entry.payload && decoded.engineInfo == entry.engineInfo)
        // Under another key, truncated, or with one byte of the response changed: not an entry.
        #expect(S3Cache.decode(bytes, key: S3CacheTests.entry("b").key) == nil)
        #expect(S3Cache.decode(bytes.prefix(bytes.count - 3), key: entry.key) == nil)
        let text = String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "A-answer", with: "B-answer")
        #expect(text != String(decoding: bytes, as: UTF8.self))
        #expect(S3Cache.decode(Data(text.utf8), key: entry.key) == nil)
    }
}

/// Against SeaweedFS (`weed mini` on loopback ports), which checks SigV4 signatures and answers
/// `If-None-Match: *` with 412.
@Suite(.serialized) struct S3CacheTests {
    static let logger = Logger(label: "test")

    static func entry(_ text: String, payload: Data? = nil, answer: String? = nil) -> CacheEntry {
        let material = CacheKey.material(
            kind: "chat", dialect: "vllm", modelID: "m", modelRevision: "r", body: ["text": .string(text)])
        return CacheEntry(
            key: CacheKey(hex: ContentHash.hex(material)), request: material,
            response: ["answer": .string(answer ?? "\(text.uppercased())-answer")], payload: payload,
            engineInfo: ["version": "0.12.0"])
    }

    static func location(_ server: SeaweedServer, prefix: String) -> S3Location {
        S3Location(bucket: SeaweedServer.bucket, prefix: prefix, endpoint: server.endpoint, region: "us-east-1")
    }

    static func open(_ server: SeaweedServer, prefix: String) async throws -> S3Cache {
        try await S3Cache.open(
            location: location(server, prefix: prefix), environment: SeaweedServer.credentials, logger: logger)
    }

    @Test("entries round-trip through a real S3 server: lookup, existing, stats, verify; a payload survives")
    func roundTrip() async throws {
        let server = try await SeaweedServer.start()
        defer { server.remove() }
        let cache = try await Self.open(server, prefix: "round/trip")
        let entries = (0..<40).map { Self.entry("text \($0)", payload: $0 % 2 == 0 ? Data([UInt8($0), 7]) : nil) }
        #expect(try await cache.entries(for: entries.map(\.key)).isEmpty)
        try await cache.store(entries)
        let found = try await cache.entries(for: entries.map(\.key) + [Self.entry("absent").key])
        #expect(found.count == 40)
        for entry in entries {
            #expect(found[entry.key]?.response == entry.response && found[entry.key]?.payload == entry.payload)
            #expect(found[entry.key]?.requestData == entry.requestData)
        }
        #expect(try await cache.existing([entries[3].key, Self.entry("absent").key]) == [entries[3].key])
        let stats = try await cache.stats()
        #expect(stats.entries == 40 && stats.bytes > 0)
        let verified = try await cache.verifyAll()
        #expect(verified.checked == 40 && verified.failed.isEmpty)
        // Another prefix is another cache.
        #expect(try await Self.open(server, prefix: "other").entries(for: entries.map(\.key)).isEmpty)
    }

    @Test("two writers of the same keys at once: the first writer wins (412 for the other), both then read one answer")
    func firstWriterWins() async throws {
        let server = try await SeaweedServer.start()
        defer { server.remove() }
        let a = try await Self.open(server, prefix: "race")
        let b = try await Self.open(server, prefix: "race")
        let keys = (0..<30).map { "q\($0)" }
        async let first: Void = a.store(keys.map { Self.entry($0, answer: "from a") })
        async let second: Void = b.store(keys.map { Self.entry($0, answer: "from b") })
        _ = try await (first, second)
        let seenA = try await a.entries(for: keys.map { Self.entry($0).key })
        let seenB = try await b.entries(for: keys.map { Self.entry($0).key })
        #expect(seenA.count == 30 && seenA == seenB)
        // A later writer never replaces a stored answer.
        try await b.store(keys.map { Self.entry($0, answer: "late") })
        #expect(try await a.entries(for: keys.map { Self.entry($0).key }) == seenA)
    }

    @Test("a corrupted object is a miss (counted), never a wrong answer, and the next store replaces it")
    func corruptedObject() async throws {
        let server = try await SeaweedServer.start()
        defer { server.remove() }
        let cache = try await Self.open(server, prefix: "corrupt")
        let good = Self.entry("x")
        try await cache.store([good])
        // Overwrite the object behind the cache's back: same length, one answer byte changed.
        let client = S3Client(
            location: Self.location(server, prefix: "corrupt"),
            credentials: S3Credentials(
                accessKeyID: SeaweedServer.accessKey, secretAccessKey: SeaweedServer.secretKey, source: "test"))
        let object = String(decoding: S3Cache.encode(good), as: UTF8.self).replacingOccurrences(
            of: "X-answer", with: "Y-answer")
        let put = try await client.call(.PUT, key: cache.objectName(good.key), body: Data(object.utf8))
        #expect(put.status == 200)
        #expect(try await cache.lookup(good.key) == nil)
        #expect(cache.failedVerification == 1)
        #expect(try await cache.verifyAll().failed == [good.key])
        try await cache.store([good])
        #expect(try await cache.lookup(good.key)?.response == good.response)
    }

    @Test("wrong credentials and a missing bucket are clear errors at open; the secret is never in them")
    func refusals() async throws {
        let server = try await SeaweedServer.start()
        defer { server.remove() }
        let wrong = ["AWS_ACCESS_KEY_ID": SeaweedServer.accessKey, "AWS_SECRET_ACCESS_KEY": "not-the-secret-4f9a"]
        do {
            _ = try await S3Cache.open(
                location: Self.location(server, prefix: "p"), environment: wrong, logger: Self.logger)
            Issue.record("wrong credentials were accepted")
        } catch let error as LabelForgeError {
            #expect(error.code == .cache)
            #expect(error.message.contains("refused the credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"))
            #expect(error.message.contains("SignatureDoesNotMatch"), "\(error.message)")
            #expect(!error.message.contains("not-the-secret-4f9a"))
        }
        do {
            _ = try await S3Cache.open(
                location: S3Location(bucket: "no-such-bucket", endpoint: server.endpoint, region: "us-east-1"),
                environment: SeaweedServer.credentials, logger: Self.logger)
            Issue.record("a missing bucket was accepted")
        } catch let error as LabelForgeError {
            #expect(error.message.contains("has no bucket 'no-such-bucket'"), "\(error.message)")
        }
    }

    @Test(
        "the server stopped: calls retry, then fail with a clear error; a tiered cache keeps answering from its local tier"
    )
    func serverStopped() async throws {
        let server = try await SeaweedServer.start()
        defer { server.remove() }
        let shared = try await Self.open(server, prefix: "tiered")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lf-tier-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tiered = TieredCache(
            local: try SQLiteCache(path: dir + "/local.sqlite", logger: Self.logger), shared: shared,
            logger: Self.logger)
        let before = Self.entry("before")
        try await tiered.store([before])
        server.stop()
        let sentBefore = shared.requestsSent
        do {
            _ = try await shared.lookup(before.key)
            Issue.record("a stopped server answered")
        } catch let error as LabelForgeError {
            #expect(error.code == .cache)
            #expect(error.message.contains("did not answer GET after 4 attempts"), "\(error.message)")
        }
        // The call and its three retries (counted, not timed: the machine may be busy).
        #expect(shared.requestsSent - sentBefore == 4)
        // For a while after, calls fail at once with the same error instead of retrying each.
        let sentAtFailure = shared.requestsSent
        await #expect(throws: LabelForgeError.self) { try await shared.lookup(Self.entry("other").key) }
        #expect(shared.requestsSent == sentAtFailure, "a call retried against a server known to be down")
        let after = Self.entry("after")
        try await tiered.store([after])
        #expect(try await tiered.lookup(before.key)?.response == before.response)
        #expect(try await tiered.lookup(after.key)?.response == after.response)
        #expect(try await tiered.lookup(Self.entry("never").key) == nil)
        // The tiered cache stopped asking the shared tier after its first failure.
        #expect(shared.requestsSent == sentAtFailure, "the tiered cache asked the stopped shared tier again")
        try await server.restart()
        // What was stored before the stop is still there (a new process: no memory of the failure).
        let again = try await Self.open(server, prefix: "tiered")
        #expect(try await again.lookup(before.key)?.response == before.response)
        // A second machine's tiered cache fills its local tier from the shared one.
        let other = TieredCache(
            local: try SQLiteCache(path: dir + "/other.sqlite", logger: Self.logger), shared: again, logger: Self.logger
        )
        #expect(try await other.lookup(before.key)?.response == before.response)
        #expect(try await other.local.lookup(before.key)?.response == before.response)
    }
}
