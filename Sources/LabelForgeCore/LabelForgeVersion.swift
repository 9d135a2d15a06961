/// The LabelForge release, recorded in manifests.
public enum LabelForgeVersion {
    public static let current = "0.1.0"
}
