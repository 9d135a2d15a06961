import Foundation
import LabelForgeCore

/// Plain objects under a bucket's prefix, through the cache's own client (signing, retries, the
/// same credentials): how a Ray job's request file and results travel when the cache is a bucket.
public final class S3Objects: Sendable {
    public let location: S3Location
    private let client: S3Client

    /// - Throws: `LabelForgeError` when no credentials are found (the message names where it looked).
    public init(location: S3Location, environment: [String: String]) throws {
        self.location = location
        client = S3Client(
            location: location,
            credentials: try S3Credentials.resolve(profile: location.profile, environment: environment))
    }

    /// The object's full name: `<prefix>/<name>`.
    public func key(_ name: String) -> String { location.prefix.isEmpty ? name : location.prefix + "/" + name }

    /// `s3://bucket/<prefix>/<name>`, as the cluster names it.
    public func url(_ name: String) -> String { "s3://\(location.bucket)/\(key(name))" }

    public func put(_ name: String, _ data: Data) async throws {
        let reply = try await client.call(.PUT, key: key(name), body: data)
        guard reply.status == 200 else { throw failure(reply, doing: "write \(url(name))") }
    }

    /// The object's bytes, or nil when there is none.
    public func get(_ name: String) async throws -> Data? {
        let reply = try await client.call(.GET, key: key(name))
        switch reply.status {
        case 200: return reply.body
        case 404: return nil
        default: throw failure(reply, doing: "read \(url(name))")
        }
    }

    /// Removes the object; a failure only leaves it behind.
    public func delete(_ name: String) async {
        _ = try? await client.call(.DELETE, key: key(name))
    }

    private func failure(_ reply: S3Client.Reply, doing what: String) -> LabelForgeError {
        LabelForgeError(
            .cache,
            "The bucket \(location.description) could not \(what): HTTP \(reply.status)"
                + S3Client.errorDetail(reply.body) + "."
                + (reply.status == 403 ? " The credentials may not read or write this prefix." : ""))
    }
}
