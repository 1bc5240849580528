"""Write one stored episode's frames as an mp4 (H.264 via imageio-ffmpeg).

The same as the installed command; see ``s2robot.commands.export_episode``.
"""

from s2robot.commands.export_episode import main

if __name__ == "__main__":
    main()
