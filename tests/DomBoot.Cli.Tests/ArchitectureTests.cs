using System.Reflection;

namespace DomBoot.Cli.Tests;

/// <summary>STYLE.md: one project per layer; references point downward only.</summary>
public sealed class ArchitectureTests
{
    private static readonly string[] Layers = ["DomBoot.Formats", "DomBoot.Storage", "DomBoot.Boot", "DomBoot.Engine", "DomBoot.Toolstack", "DomBoot.Net", "domboot"];

    [Fact]
    public void EveryLayer_ReferencesOnlyLayersBelowIt()
    {
        for (int i = 0; i < Layers.Length; i++)
        {
            var asm = Assembly.Load(Layers[i]);
            foreach (var r in asm.GetReferencedAssemblies())
            {
                int j = Array.IndexOf(Layers, r.Name);
                if (j < 0) continue;
                Assert.True(j < i, $"{Layers[i]} references {r.Name}, which is not below it");
            }
        }
    }

    [Fact]
    public void OnlyTheCli_IsAnExecutable()
    {
        foreach (var name in Layers[..^1])
            Assert.Null(Assembly.Load(name).EntryPoint);
        Assert.NotNull(Assembly.Load("domboot").EntryPoint);
    }
}
