/// The LabelForge release, recorded in manifests.
public enum LabelForgeVersion {
    public static let current = "0.2.0"
}
