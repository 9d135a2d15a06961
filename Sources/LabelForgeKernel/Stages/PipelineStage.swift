import LabelForgeCore
import LabelForgeIO
import LabelForgeLLM

/// What every stage has, whether it sends chat requests (`ChatStage`), computes each row's result
/// some other way (`RowWiseStage`) or consumes the whole row set (`BarrierStage`).
///
/// The run reads a stage only through these traits: which rows come out (`rowSet`), which engines it
/// uses and how (`engineUses`), and how it executes (`execution`). No code outside a stage's own file
/// names a concrete stage type.
public protocol PipelineStage: Sendable {
    var config: RunConfig.Stage { get }
    /// Bumped when the stage's prompting or parsing logic changes.
    var version: Int { get }
    /// Output fields, in the order they are documented.
    var outputFields: [String] { get }
    /// Field paths the stage's options read (candidates, filter clauses, a dedup field); each is a
    /// row field or `<stage>.<field>`.
    var optionReferences: [String] { get }
    /// How the stage fits texts to an embedding or rerank model's window; `nil` for stages that
    /// send no such texts.
    var truncation: Truncation? { get }
    /// What the stage does to the row set; `.preserves` by default.
    var rowSet: RowSet { get }
    /// The engines the stage sends requests to, one per task; none by default.
    var engineUses: [EngineUse] { get }
    /// How the run executes the stage: row by row, or once over the whole row set.
    var execution: StageExecution { get }
    /// Templates of the prompt pack the stage renders; none by default.
    var templates: [String] { get }
    /// `(output field, gold field)` pairs to score against, where the dataset has gold labels; none
    /// by default.
    var goldPairs: [(output: String, gold: String)] { get }
    /// Whether the stage's results carry vectors (`StageResult.vector`), written to
    /// `outputs/<stage>.npy`; false by default.
    var writesVectors: Bool { get }
    /// The types of the output fields the stage declares, for the Parquet views and Hugging Face
    /// exports; a field left out is typed from its values. None by default.
    var outputTypes: [String: ColumnType] { get }
    /// Row fields (not upstream outputs) every row of the dataset must have for this stage, by root
    /// name: the row fields its options read by default.
    func requiredRowFields(graph: StageGraph, pack: PromptPack) -> [String]
    /// How the stage reads a required field, for the error about a row without it: "" by default,
    /// "template 'x' " where a template reads it.
    func use(ofField field: String) -> String
}

extension PipelineStage {
    public var optionReferences: [String] { [] }
    public var truncation: Truncation? { nil }
    public var rowSet: RowSet { .preserves }
    public var engineUses: [EngineUse] { [] }
    public var templates: [String] { [] }
    public var goldPairs: [(output: String, gold: String)] { [] }
    public var writesVectors: Bool { false }
    public var outputTypes: [String: ColumnType] { [:] }

    public func requiredRowFields(graph: StageGraph, pack: PromptPack) -> [String] {
        graph.rowFields(optionReferences).map(PromptPack.rootName).sorted()
    }

    public func use(ofField field: String) -> String { "" }
}

/// What a stage does to the row set.
public enum RowSet: Sendable, Equatable {
    /// One row out per row in.
    case preserves
    /// A row in is kept or dropped (its line then goes to `<stage>.rejected.jsonl`).
    case filters
    /// `n` rows out per row in (samples), each its own child row.
    case fansOut(Int)
    /// The stage consumes the whole row set before any row goes on (`BarrierStage`).
    case barrier

    /// Rows out per row in: `n` for a fan-out, else 1.
    public var samples: Int {
        if case .fansOut(let n) = self { return n }
        return 1
    }

    /// Whether the stage drops, multiplies or replaces rows: every stage listed after it then runs
    /// after it.
    public var changesRows: Bool { self != .preserves }

    /// Whether rows can leave here, so the stage writes `<stage>.rejected.jsonl`.
    public var drops: Bool { self == .filters || self == .barrier }
}

/// One engine a stage sends requests to, and how.
public struct EngineUse: Sendable, Equatable {
    /// What the requests ask of the engine.
    public enum Task: String, Sendable, Hashable {
        case chat, embed, rerank
    }

    /// The engine's name in the config.
    public var engine: String
    public var task: Task
    /// Requests go through a `RequestBatcher` of this many inputs (each keeps its own cache key);
    /// `nil` sends each request alone.
    public var batchSize: Int?

    public init(engine: String, task: Task, batchSize: Int? = nil) {
        self.engine = engine
        self.task = task
        self.batchSize = batchSize
    }
}

/// How the run executes a stage: row by row (`RowWiseStage`), or once over the whole row set
/// (`BarrierStage`). A stage gets it from the protocol it conforms to.
public struct StageExecution: Sendable {
    package enum Body: Sendable {
        case rowWise(any RowWiseStage)
        case datasetWide(any BarrierStage)
    }

    package let body: Body

    package var rowWise: (any RowWiseStage)? {
        if case .rowWise(let stage) = body { return stage }
        return nil
    }

    package var datasetWide: (any BarrierStage)? {
        if case .datasetWide(let stage) = body { return stage }
        return nil
    }
}

/// A stage that decides each row on its own: one result per row (and sample), with engine requests
/// through the `StageContext`.
public protocol RowWiseStage: PipelineStage {
    /// The stage's result for one row (one sample of it, for a stage that fans out).
    ///
    /// A failure is a result (`StageResult.failed`), not a throw: it is recorded for this row and the
    /// run goes on. Throw only to stop the run (cancellation).
    func process(_ row: RowContext, sample: Int, in context: StageContext) async throws -> StageResult
}

extension RowWiseStage {
    public var execution: StageExecution { StageExecution(body: .rowWise(self)) }
}
