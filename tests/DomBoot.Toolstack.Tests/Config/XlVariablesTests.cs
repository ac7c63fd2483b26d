using DomBoot.Formats.Errors;
using DomBoot.Toolstack.Config;

namespace DomBoot.Toolstack.Tests.Config;

public class XlVariablesTests
{
    [Fact]
    public void ParseDefines_SeveralInOneFlag()
    {
        var v = XlVariables.ParseDefines(["vmid=3:ip=10.0.0.3", "mem=100;name=x", "vmid=4", "empty=", "::"]);
        Assert.Equal("4", v["vmid"]);
        Assert.Equal("10.0.0.3", v["ip"]);
        Assert.Equal("100", v["mem"]);
        Assert.Equal("x", v["name"]);
        Assert.Equal("", v["empty"]);
        Assert.Equal(5, v.Count);
    }

    [Fact]
    public void ParseDefines_ValueMayContainEquals() =>
        Assert.Equal("a=b", XlVariables.ParseDefines(["opt=a=b"])["opt"]);

    [Theory]
    [InlineData("vmid=3:ip", "-D #1:1:8: expected name=value; found \"ip\"")]
    [InlineData("=3", "-D #1:1:1: invalid variable name \"\"; expected letters, digits and '_', not starting with a digit")]
    [InlineData("a=1:9x=2", "-D #1:1:5: invalid variable name \"9x\"; expected letters, digits and '_', not starting with a digit")]
    [InlineData("a-b=1", "-D #1:1:1: invalid variable name \"a-b\"; expected letters, digits and '_', not starting with a digit")]
    public void ParseDefines_RejectsMalformed(string define, string message)
    {
        var ex = Assert.Throws<ConfigSyntaxException>(() => XlVariables.ParseDefines([define]));
        Assert.Equal(message, ex.Message);
    }

    [Fact]
    public void ParseDefines_NamesTheFlag()
    {
        var ex = Assert.Throws<ConfigSyntaxException>(() => XlVariables.ParseDefines(["a=1", "b"]));
        Assert.Equal("-D #2:1:1: expected name=value; found \"b\"", ex.Message);
    }
}
